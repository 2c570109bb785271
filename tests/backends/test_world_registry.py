"""The world back-end registry builds each back end by name, and a diffusers kind records exactly the reference
images it sends."""

from __future__ import annotations

import numpy as np
import pytest

from generators import GeneratorInputError, WeightsNotFoundError, get_world_generator, world_backends
from generators.camera import Intrinsics
from generators.world import ContextFrame, WorldPlan
from generators.world_diffusers import KINDS, build_world_kwargs
from generators.world_preview import PreviewWorldGenerator

SETTINGS = {"num_inference_steps": 2, "guidance_scale": 5.0}


def _plan(context: list[ContextFrame]) -> WorldPlan:
    rgb = np.full((5, 16, 16, 3), 120, np.uint8)
    mask = np.ones((5, 16, 16), bool)
    return WorldPlan(
        step=0, times=[float(i) for i in range(5)], c2w=np.repeat(np.eye(4)[None], 5, axis=0),
        camera=Intrinsics(10.0, 10.0, 8.0, 8.0, 16, 16), action="walk", prompt="a street", guidance_rgb=rgb,
        guidance_depth=np.ones((5, 16, 16), np.float32), guidance_mask=mask, context=context,
    )  # fmt: skip


def _frame(i: int, pixels: bool) -> ContextFrame:
    return ContextFrame(f"f{i}", float(i), np.eye(4), 1.0 - i / 10, "covers", np.full((16, 16, 3), 10 * i, np.uint8)
                        if pixels else None)  # fmt: skip


def test_the_registry_names_the_preview_and_every_diffusers_kind():
    assert world_backends() == sorted(["preview", *KINDS])
    assert isinstance(get_world_generator("preview"), PreviewWorldGenerator)
    with pytest.raises(GeneratorInputError, match="Unknown world back end name='ltx'; pass one of cogvideox, preview"):
        get_world_generator("ltx")


@pytest.mark.parametrize("kind", KINDS)
def test_a_diffusers_kind_without_weights_is_the_weights_error(kind, tmp_path):
    with pytest.raises(WeightsNotFoundError, match="no such local directory"):
        get_world_generator(kind, model=str(tmp_path / "no-weights"), device="cpu")


def test_a_diffusers_kind_wraps_its_video_back_end(tiny_svd):
    gen = get_world_generator("svd", pipe=tiny_svd, num_inference_steps=2, max_reference_images=2)
    assert (gen.name, gen.backend.name, gen.max_reference_images) == ("svd-world", "svd", 2)


def test_the_recorded_reference_ids_are_those_of_the_images_sent():
    # f1 has no pixels (not sent), and the limit is 2: the images sent are f0's and f2's, and so are the ids.
    plan = _plan([_frame(0, True), _frame(1, False), _frame(2, True), _frame(3, True), _frame(4, True)])
    kwargs, sources = build_world_kwargs("wan-vace", plan, SETTINGS, max_reference_images=2)
    sent = [int(np.asarray(im)[0, 0, 0]) // 10 for im in kwargs["reference_images"]]
    assert (sent, sources["reference_images"]) == ([0, 2], ["f0", "f2"])
    kwargs, sources = build_world_kwargs("wan-vace", _plan([_frame(0, False)]), SETTINGS)
    assert (kwargs["reference_images"], sources["reference_images"]) == (None, [])
