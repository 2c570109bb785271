"""What each diffusers back end passes to its pipeline, checked without running a model."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from generators import GeneratorInputError, WeightsNotFoundError, get_generator
from generators.animatediff_backend import (
    EntityEmbedding,
    IPAdapterLayout,
    build_animatediff_kwargs,
    entity_ip_embeds,
    ip_adapter_layout,
    stack_ip_adapter_embeds,
)
from generators.conditioning import EntityConditioning, FrameRef, LocationConditioning
from generators.diffusers_backends import (
    AnimateDiffGenerator,
    CogVideoXGenerator,
    build_cogvideox_kwargs,
    build_svd_kwargs,
    build_wan_i2v_kwargs,
    build_wan_vace_kwargs,
)
from generators.diffusers_common import check_video_inputs, frames_to_uint8


def _pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"))


def _scene(make_plan, image_file, *, continuity=True, loc_ref=True, ent_refs=True, **kw):
    files = {
        "cont": image_file((10, 200, 10)),
        "loc": image_file((200, 10, 10)),
        "mara": image_file((10, 10, 200)),
        "tomas": image_file((200, 200, 10)),
    }
    ents = [
        EntityConditioning(
            id="mara",
            name="Mara",
            kind="character",
            appearance="red raincoat",
            reference_images=[files["mara"]] if ent_refs else [],
        ),
        EntityConditioning(
            id="tomas",
            name="Tomas",
            kind="character",
            appearance="yellow oilskin",
            reference_images=["/missing.png", files["tomas"]] if ent_refs else [],
        ),
    ]
    loc = LocationConditioning(
        id="harbor",
        name="Harbor",
        appearance="grey harbor",
        reference_frames=[FrameRef("s00", 4, files["loc"])] if loc_ref else [],
    )
    plan = make_plan(entities=ents, location=loc, continue_from=files["cont"] if continuity else None, **kw)
    return plan, files


def test_cogvideox_kwargs_use_prompt_and_first_frame(make_plan, image_file):
    plan, files = _scene(make_plan, image_file, prompt="Mara waves", negative_prompt="low quality")
    spec = build_cogvideox_kwargs(plan, width=32, height=16, num_frames=9, num_inference_steps=2)
    kw = spec.kwargs
    assert (kw["prompt"], kw["negative_prompt"]) == ("Mara waves", "low quality")
    assert (kw["width"], kw["height"], kw["num_frames"], kw["num_inference_steps"]) == (32, 16, 9, 2)
    assert kw["image"].size == (32, 16) and tuple(_pixels(kw["image"])[0, 0]) == (10, 200, 10)
    assert spec.sources["image"] == f"continuity:{files['cont']}"
    assert spec.notes == ["3 reference image(s) not used: this pipeline takes a single first frame"]


def test_first_frame_falls_back_from_continuity_to_location_to_entity(make_plan, image_file):
    no_cont, files = _scene(make_plan, image_file, continuity=False)
    assert build_wan_i2v_kwargs(no_cont, width=16, height=16).sources["image"] == f"location_reference:{files['loc']}"
    ent_only, files = _scene(make_plan, image_file, continuity=False, loc_ref=False)
    spec = build_wan_i2v_kwargs(ent_only, width=16, height=16)
    assert spec.sources["image"] == f"entity_reference:{files['mara']}"
    assert tuple(_pixels(spec.kwargs["image"])[0, 0]) == (10, 10, 200)


def test_no_image_needs_a_fallback(make_plan):
    plan = make_plan()
    with pytest.raises(GeneratorInputError, match="fallback_first_frame='storyboard'"):
        build_cogvideox_kwargs(plan)
    spec = build_cogvideox_kwargs(plan, width=16, height=16, fallback_image=Image.new("RGB", (8, 8), "white"))
    assert spec.sources["image"] == "fallback" and spec.kwargs["image"].size == (16, 16)


def test_wan_vace_reference_images_and_continuity_video(make_plan, image_file):
    plan, files = _scene(make_plan, image_file)
    spec = build_wan_vace_kwargs(plan, width=32, height=16, num_frames=5, conditioning_scale=0.7)
    kw = spec.kwargs
    colours = [tuple(_pixels(im)[0, 0]) for im in kw["reference_images"]]
    assert colours == [
        (10, 10, 200),
        (200, 200, 10),
        (200, 10, 10),
    ]  # Mara, Tomas (missing file skipped), place
    assert spec.sources["reference_images"] == [
        f"entity:mara:{files['mara']}",
        f"entity:tomas:{files['tomas']}",
        f"location:harbor:{files['loc']}",
    ]
    assert len(kw["video"]) == len(kw["mask"]) == 5
    assert tuple(_pixels(kw["video"][0])[0, 0]) == (10, 200, 10) and tuple(_pixels(kw["video"][1])[0, 0]) == (127,) * 3
    assert [int(np.asarray(m).max()) for m in kw["mask"]] == [0, 255, 255, 255, 255]
    assert kw["conditioning_scale"] == 0.7
    capped = build_wan_vace_kwargs(plan, width=32, height=16, num_frames=5, max_reference_images=1)
    assert len(capped.kwargs["reference_images"]) == 1 and "2 reference image(s) dropped" in capped.notes[0]
    bare = build_wan_vace_kwargs(make_plan(), width=32, height=16, num_frames=5)
    assert bare.kwargs["reference_images"] is None and "video" not in bare.kwargs


def test_svd_kwargs_motion_bucket_and_fps(make_plan, image_file):
    plan, _ = _scene(make_plan, image_file, motion="run", camera="orbit")
    spec = build_svd_kwargs(plan, width=64, height=32, num_frames=7, fps=6, noise_aug_strength=0.1)
    kw = spec.kwargs
    assert (kw["motion_bucket_id"], kw["fps"], kw["noise_aug_strength"], kw["decode_chunk_size"]) == (
        220,
        6,
        0.1,
        7,
    )
    assert "prompt" not in kw and "SVD is image-only" in spec.notes[0]
    still, _ = _scene(make_plan, image_file, action="Mara waits")
    assert build_svd_kwargs(still).kwargs["motion_bucket_id"] == 40


def test_check_inputs_name_argument_and_fix():
    with pytest.raises(GeneratorInputError, match=r"num_frames must be 4\*k\+1 \(e.g. 9 or 13\), got 10"):
        check_video_inputs("cogvideox", 32, 32, 10, 8, multiple=16, temporal=4)
    with pytest.raises(GeneratorInputError, match="width must be divisible by 16.*use 32"):
        check_video_inputs("wan-i2v", 40, 32, 9, 16, multiple=16, temporal=4)
    with pytest.raises(GeneratorInputError, match="num_inference_steps"):
        check_video_inputs("svd", 32, 32, 4, 7, multiple=8, num_inference_steps=0)


def test_frames_to_uint8_accepts_np_pt_and_pil():
    arr = np.linspace(0, 1, 2 * 3 * 4 * 5 * 3, dtype=np.float32).reshape(2, 3, 4, 5, 3)
    out = frames_to_uint8(arr)
    assert out.shape == (3, 4, 5, 3) and out.dtype == np.uint8 and out[0, 0, 0, 0] == 0
    pt = torch.from_numpy(arr).permute(0, 1, 4, 2, 3)  # (B, T, C, H, W)
    assert np.array_equal(frames_to_uint8(pt), out)
    pil = [[Image.fromarray(f) for f in out]]
    assert np.array_equal(frames_to_uint8(pil), out)


# --------------------------------------------------------------------------- AnimateDiff IP-Adapter input


def _fake_encode(images):
    """Embedding = mean colour repeated; negative = zeros (like a plain IP-Adapter)."""
    emb = torch.tensor([np.asarray(im, dtype=np.float32).mean(axis=(0, 1)).tolist() * 2 for im in images])
    return emb, torch.zeros_like(emb)


def test_entity_ip_embeds_prefer_matching_plan_embeddings(make_plan, image_file):
    red, blue = image_file((255, 0, 0)), image_file((0, 0, 255))
    ents = [
        EntityConditioning(id="a", name="A", kind="character", appearance="", reference_images=[red, blue]),
        EntityConditioning(
            id="b", name="B", kind="character", appearance="", embedding=[1.0] * 6, reference_images=[red]
        ),
        EntityConditioning(id="c", name="C", kind="character", appearance="", embedding=[1.0] * 5),
        EntityConditioning(id="d", name="D", kind="character", appearance=""),
    ]
    out, notes = entity_ip_embeds(make_plan(entities=ents), _fake_encode, IPAdapterLayout(False, 6))
    assert [(x.entity_id, x.source) for x in out] == [("a", "reference_images:2"), ("b", "plan.embedding")]
    assert out[0].embeds.tolist() == [[127.5, 0.0, 127.5, 127.5, 0.0, 127.5]]  # mean of red and blue
    assert notes == ["entity 'c': embedding of size 5 skipped, the IP-Adapter wants size 6"]
    stacked = stack_ip_adapter_embeds(out, do_classifier_free_guidance=True)
    assert len(stacked) == 1 and stacked[0].shape == (2, 2, 6)
    assert torch.equal(stacked[0][0], torch.zeros(2, 6)) and torch.equal(stacked[0][1, 1], torch.ones(6))
    assert stack_ip_adapter_embeds(out, do_classifier_free_guidance=False)[0].shape == (1, 2, 6)


def test_animatediff_kwargs(make_plan):
    ent = EntityEmbedding("mara", "plan.embedding", torch.ones(1, 4), torch.zeros(1, 4))
    spec = build_animatediff_kwargs(
        make_plan(prompt="Mara rows"),
        width=64,
        height=32,
        num_frames=4,
        guidance_scale=1.0,
        entity_embeds=[ent],
    )
    assert spec.kwargs["prompt"] == "Mara rows" and (spec.kwargs["width"], spec.kwargs["height"]) == (64, 32)
    assert spec.kwargs["ip_adapter_image_embeds"][0].shape == (1, 1, 4)  # no CFG -> no negative half
    assert spec.sources["ip_adapter_image_embeds"] == ["mara:plan.embedding"]
    assert "ip_adapter_image_embeds" not in build_animatediff_kwargs(make_plan()).kwargs


def test_ip_adapter_layout_without_adapter():
    assert ip_adapter_layout(SimpleNamespace(unet=SimpleNamespace(encoder_hid_proj=None))) is None


# --------------------------------------------------------------------------- missing weights


@pytest.fixture
def offline(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def test_missing_local_directory_raises_weights_not_found(offline, tmp_path):
    missing = str(tmp_path / "CogVideoX-5b-I2V")
    with pytest.raises(WeightsNotFoundError, match="no such local directory") as err:
        CogVideoXGenerator(missing, device="cpu")
    assert missing in str(err.value) and "huggingface-cli download" in str(err.value)


@pytest.mark.parametrize("name", ["cogvideox", "wan-i2v", "wan-vace", "svd"])
def test_unknown_model_id_offline_raises_weights_not_found(offline, name):
    with pytest.raises(WeightsNotFoundError, match="agentmem-tests/no-such-model"):
        get_generator(name, model="agentmem-tests/no-such-model", device="cpu")


def test_animatediff_missing_motion_adapter_raises_weights_not_found(offline):
    with pytest.raises(WeightsNotFoundError, match="agentmem-tests/no-motion-adapter"):
        AnimateDiffGenerator("agentmem-tests/no-base", motion_adapter="agentmem-tests/no-motion-adapter", device="cpu")
