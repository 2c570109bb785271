import numpy as np
import pytest
from PIL import Image

from agentmem.encoders.embedders import DescriptorImageEmbedder, OpenClipImageEmbedder, image_embedder
from agentmem.errors import MediaNotFoundError, ModelUnavailableError


def test_minilm_is_real_384d_and_semantic(minilm):
    v = minilm.embed(
        [
            "a lighthouse keeper lights the lamp",
            "the keeper of the lighthouse turns on the light",
            "stock prices fell sharply",
        ]
    )
    assert v.shape == (3, 384) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert v[0] @ v[1] > 0.6 > v[0] @ v[2]


def test_descriptor_is_deterministic_unit_and_colour_sensitive(tmp_path):
    emb = DescriptorImageEmbedder()
    imgs = {}
    for name, col in {"red": (200, 20, 20), "red2": (210, 30, 25), "blue": (20, 20, 200)}.items():
        a = np.zeros((48, 64, 3), np.uint8)
        a[:] = col
        imgs[name] = str(tmp_path / f"{name}.png")
        Image.fromarray(a).save(imgs[name])
    v = emb.embed_images([imgs["red"], imgs["red2"], imgs["blue"]])
    assert v.shape == (3, emb.dim) and np.allclose(np.linalg.norm(v, axis=1), 1)
    assert v[0] @ v[1] > v[0] @ v[2]
    assert np.array_equal(v[0], emb.embed_images([imgs["red"]])[0])
    with pytest.raises(MediaNotFoundError, match="image not found"):
        emb.embed_images([str(tmp_path / "none.png")])


def test_open_clip_without_weights_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    a = np.zeros((32, 32, 3), np.uint8)
    Image.fromarray(a).save(tmp_path / "x.png")
    emb = image_embedder("open_clip:ViT-B-32:laion2b_s34b_b79k")
    assert isinstance(emb, OpenClipImageEmbedder)
    with pytest.raises(ModelUnavailableError, match="cannot load open_clip 'ViT-B-32'.*local checkpoint"):
        emb.embed_images([str(tmp_path / "x.png")])


def test_unknown_text_model_fails_clearly(monkeypatch):
    from agentmem.encoders.embedders import SentenceTransformerEmbedder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="cannot load text model 'no-such/model'"):
        SentenceTransformerEmbedder("no-such/model").embed(["x"])


def test_importing_the_package_loads_no_model():
    import subprocess
    import sys

    code = (
        "import sys, agentmem, graph, generators; "
        "heavy=('torch','sentence_transformers','chromadb','diffusers','open_clip'); "
        "bad=[m for m in heavy if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
