"""Summaries of episodes, arcs and communities: a text and a vector for each parent node.

The offline default (:class:`ExtractiveSummarizer`) keeps the most central
children's sentences, centrality being the summed cosine to the siblings, in
story order; the vector is the mean of the children's vectors.
:class:`TransformersSummarizer` writes abstractive text with a local
transformers model instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np


def unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


@runtime_checkable
class Summarizer(Protocol):
    """Writes the summary text of a parent from its children's texts (and vectors, if any)."""

    name: str

    def summarize(self, texts: Sequence[str], vecs: np.ndarray | None) -> str: ...


def central_order(vecs: np.ndarray) -> list[int]:
    """Children by centrality (summed cosine to the others), most central first; ties keep story order.

    Examples
    --------
    >>> central_order(np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]]))
    [1, 0, 2]
    """
    X = np.asarray(vecs, dtype=np.float32)
    c = X @ X.sum(axis=0)
    return sorted(range(len(X)), key=lambda i: (-round(float(c[i]), 5), i))


def word_vectors(texts: Sequence[str]) -> np.ndarray:
    """Bag-of-words unit vectors: centrality without an embedder."""
    vocab: dict[str, int] = {}
    rows = [[vocab.setdefault(w, len(vocab)) for w in t.lower().split()] for t in texts]
    X = np.zeros((len(texts), max(len(vocab), 1)), dtype=np.float32)
    for i, r in enumerate(rows):
        for j in r:
            X[i, j] = 1.0
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-9)


class ExtractiveSummarizer:
    """The ``n`` most central child texts, in story order, each cut to ``max_chars``.

    Examples
    --------
    >>> s = ExtractiveSummarizer(n=1)
    >>> s.summarize(["a storm", "the storm rises", "tea"], np.array([[1.0, 0], [0.9, 0.44], [0, 1.0]]))
    'the storm rises'
    """

    name = "extractive-centrality"

    def __init__(self, n: int = 3, max_chars: int = 240):
        self.n = n
        self.max_chars = max_chars

    def summarize(self, texts: Sequence[str], vecs: np.ndarray | None) -> str:
        if not texts:
            return ""
        X = vecs if vecs is not None and len(vecs) == len(texts) else word_vectors(texts)
        keep = sorted(central_order(X)[: self.n])
        return " ".join(cut(texts[i], self.max_chars) for i in keep)


def cut(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


class TransformersSummarizer:
    """Abstractive summaries from a local transformers summarization model (loaded on first use).

    Raises :class:`~agentmem.errors.ModelUnavailableError` when the model cannot be loaded.
    """

    def __init__(self, model: str, max_length: int = 80):
        self.model = model
        self.name = f"transformers:{model}"
        self.max_length = max_length
        self._pipe: Any = None

    def summarize(self, texts: Sequence[str], vecs: np.ndarray | None) -> str:
        if self._pipe is None:
            import os
            from pathlib import Path

            from agentmem.errors import ModelUnavailableError

            if os.environ.get("HF_HUB_OFFLINE") == "1" and not Path(self.model).exists():
                raise ModelUnavailableError(
                    f"summarizer {self.model!r} cannot be loaded: offline, and no such local directory"
                )
            try:
                from transformers import pipeline

                make: Any = pipeline  # the task name is checked at run time; its typed overloads vary by version
                self._pipe = make("summarization", model=self.model, device="cpu")
            except Exception as exc:  # noqa: BLE001 - any load failure means the same thing to the caller
                raise ModelUnavailableError(f"summarizer {self.model!r} cannot be loaded: {exc}") from None
        out = self._pipe(" ".join(texts)[:4000], max_length=self.max_length, truncation=True)
        return out[0]["summary_text"].strip()


def stacked(vecs: Sequence[np.ndarray | None]) -> np.ndarray | None:
    """The vectors as rows of one matrix, or ``None`` when any is missing."""
    present = [v for v in vecs if v is not None]
    return np.stack(present) if present and len(present) == len(vecs) else None


def centroid(vecs: Sequence[np.ndarray | None], weights: Sequence[float] | None = None) -> np.ndarray | None:
    vs = [v for v in vecs if v is not None]
    if not vs:
        return None
    w = (
        np.ones(len(vs))
        if weights is None
        else np.asarray([w for v, w in zip(vecs, weights, strict=True) if v is not None])
    )
    return unit((np.stack(vs) * w[:, None]).sum(axis=0)).astype(np.float32)
