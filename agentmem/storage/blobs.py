"""Vectors as SQLite blobs: float32 bytes in, float32 arrays out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def vec_to_blob(vec: Sequence[float] | np.ndarray | None) -> bytes | None:
    if vec is None:
        return None
    return np.asarray(vec, dtype=np.float32).tobytes()


def blob_to_array(blob: bytes) -> np.ndarray:
    """A stored vector (never ``NULL``) as a float32 array."""
    return np.frombuffer(blob, dtype=np.float32)


def blob_to_vec(blob: bytes | None) -> np.ndarray | None:
    return None if blob is None else np.frombuffer(blob, dtype=np.float32)
