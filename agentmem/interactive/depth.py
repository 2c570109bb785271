"""Depth for generated frames that come without it: transformers' depth-estimation pipeline, loaded on first use.

Give a model id (``"depth-anything/Depth-Anything-V2-Metric-Outdoor-Small-hf"``, say) or a local folder. Many
depth models predict *relative* depth; ``scale`` converts their output to metres (a metric model needs 1.0).
Without weights, the error says how to get them; the loop then stores frames without depth and the ``fov``
policy serves later views.
"""

from __future__ import annotations

import numpy as np

from agentmem.errors import ModelUnavailableError


class DepthEstimator:
    """``estimator(rgb) -> depth``: (H, W, 3) uint8 in, (H, W) float32 metres out, at the image's size."""

    def __init__(self, model: str, *, scale: float = 1.0, device: str | int = -1):
        self.model, self.scale, self.device = model, scale, device
        self._pipe = None

    def _load(self):
        try:
            from transformers import pipeline
        except ImportError as e:  # pragma: no cover - transformers is a dependency
            raise ModelUnavailableError(f"depth estimator: transformers is not installed ({e})") from None
        try:
            return pipeline("depth-estimation", model=self.model, device=self.device)
        except (OSError, ValueError) as e:
            raise ModelUnavailableError(
                f"depth estimator {self.model!r}: weights not found ({str(e).splitlines()[0]}). Download them once "
                f"with `huggingface-cli download {self.model} --local-dir <dir>` where the hub is reachable and pass "
                "<dir> as the model"
            ) from None

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        from PIL import Image

        if self._pipe is None:
            self._pipe = self._load()
        out = self._pipe(Image.fromarray(rgb))  # type: ignore[misc]
        pred = np.asarray(out["predicted_depth"], np.float32).squeeze()
        if pred.shape != rgb.shape[:2]:
            pred = np.asarray(Image.fromarray(pred).resize((rgb.shape[1], rgb.shape[0]), Image.Resampling.BILINEAR))
        return (pred * self.scale).astype(np.float32)
