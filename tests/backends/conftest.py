"""Fixtures for the generators tests: plans, image files, and tiny random diffusers pipelines.

The pipelines follow the dummy components of diffusers' own fast tests, with
two changes so that nothing is downloaded: text encoders are built from
configs, and the tokenizer is a byte-level BPE with no merges built with the
``tokenizers`` library (every byte is a token, so any change of the prompt
changes the token ids). Weights are random; the tests only check that each
piece of conditioning reaches the model and changes its output.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from generators.conditioning import (
    CameraConditioning,
    DynamicConditioning,
    EntityConditioning,
    FrameRef,
    LocationConditioning,
    ShotPlan,
    StaticConditioning,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")


# ----------------------------------------------------------------------------- plans and images


@pytest.fixture
def make_plan():
    """Build a ShotPlan from a few keyword arguments."""

    def make(
        *,
        shot_id: str = "s01",
        prompt: str = "Mara walks along the harbor in the rain",
        negative_prompt: str = "blurry",
        entities: list[EntityConditioning] | None = None,
        location: LocationConditioning | None = None,
        action: str = "",
        motion: str = "still",
        camera: str = "static",
        continue_from: str | None = None,
        seed: int = 0,
        duration: float = 2.0,
    ) -> ShotPlan:
        if entities is None:
            entities = [EntityConditioning(id="mara", name="Mara", kind="character", appearance="a red raincoat")]
        if location is None:
            location = LocationConditioning(id="harbor", name="The Harbor", appearance="a grey harbor at dusk")
        return ShotPlan(
            shot_id=shot_id,
            t=0.0,
            duration=duration,
            prompt=prompt,
            negative_prompt=negative_prompt,
            static=StaticConditioning(entities=entities, location=location),
            dynamic=DynamicConditioning(
                action=action,
                motion=motion,
                camera=CameraConditioning(move=camera),
                continue_from=FrameRef("s00", 15, continue_from) if continue_from else None,
            ),
            seed=seed,
        )

    return make


@pytest.fixture
def image_file(tmp_path):
    """Write an RGB PNG (solid colour, or a pattern when ``pattern=True``) and return its path."""
    counter = iter(range(10**6))

    def write(colour=(255, 0, 0), size=(64, 48), pattern: bool = False) -> str:
        if pattern:
            rng = np.random.default_rng(sum(colour))
            arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
        else:
            arr = np.zeros((size[1], size[0], 3), dtype=np.uint8) + np.array(colour, dtype=np.uint8)
        path = tmp_path / f"img_{next(counter)}.png"
        Image.fromarray(arr).save(path)
        return str(path)

    return write


# ----------------------------------------------------------------------------- torch settings


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run torch on one thread: on a shared 2-core machine, two threads contending are many times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------------- tiny components


def byte_tokenizer(max_length: int):
    """A byte-level BPE tokenizer with no merges; ids 0 = <pad>, 1 = </s>, 2 = <unk>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "</s>", "<unk>"]
    vocab = {t: i for i, t in enumerate(specials + sorted(pre_tokenizers.ByteLevel.alphabet()))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=max_length,
    )


VOCAB = 259  # 3 specials + 256 byte symbols


def tiny_t5():
    from transformers import T5Config, T5EncoderModel

    cfg = T5Config(
        vocab_size=VOCAB,
        d_model=32,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    return T5EncoderModel(cfg)


def tiny_clip_vision(image_size: int, patch_size: int, hidden: int = 32, projection: int = 32):
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    cfg = CLIPVisionConfig(
        hidden_size=hidden,
        projection_dim=projection,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=image_size,
        intermediate_size=37,
        patch_size=patch_size,
    )
    return CLIPVisionModelWithProjection(cfg), CLIPImageProcessor(crop_size=image_size, size=image_size)


def evaluated(pipe):
    """Put every torch module of ``pipe`` in eval mode, as ``from_pretrained`` does, on the test device.

    Modules built from configs start in training mode, where dropout (T5 has
    0.1) makes two runs with the same seed differ. ``AGENTMEM_TEST_DEVICE``
    (default ``cpu``) and ``AGENTMEM_TEST_DTYPE`` (default ``fp32``) move the
    tiny pipelines, e.g. to ``cuda`` in ``bf16`` for the GPU check.
    """
    import torch

    from generators.diffusers_common import resolve_dtype

    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.eval()
    device = os.environ.get("AGENTMEM_TEST_DEVICE", "cpu")
    dtype = os.environ.get("AGENTMEM_TEST_DTYPE", "fp32")
    if (device, dtype) != ("cpu", "fp32"):
        pipe.to(device, resolve_dtype(dtype, device))
    return pipe


def tiny_wan_vae():
    from diffusers import AutoencoderKLWan

    return AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )


@pytest.fixture(scope="session")
def tiny_cogvideox():
    """CogVideoXImageToVideoPipeline for 16x16, 9 frames, prompts of up to 32 tokens (bytes)."""
    import torch
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXImageToVideoPipeline,
        CogVideoXTransformer3DModel,
        DDIMScheduler,
    )

    torch.manual_seed(0)
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2,
        attention_head_dim=16,
        in_channels=8,
        out_channels=4,
        time_embed_dim=2,
        text_embed_dim=32,
        num_layers=1,
        sample_width=2,
        sample_height=2,
        sample_frames=9,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=32,
        use_rotary_positional_embeddings=True,
        use_learned_positional_embeddings=True,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    torch.manual_seed(0)
    pipe = CogVideoXImageToVideoPipeline(
        tokenizer=byte_tokenizer(32),
        text_encoder=tiny_t5(),
        vae=vae,
        transformer=transformer,
        scheduler=DDIMScheduler(),
    )
    return evaluated(pipe)


@pytest.fixture(scope="session")
def tiny_wan_i2v():
    """WanImageToVideoPipeline for 16x16, 9 frames."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline, WanTransformer3DModel

    torch.manual_seed(0)
    vae = tiny_wan_vae()
    torch.manual_seed(0)
    text_encoder = tiny_t5()
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=36,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        image_dim=4,
    )
    torch.manual_seed(0)
    encoder, processor = tiny_clip_vision(32, 1, hidden=4, projection=4)
    pipe = WanImageToVideoPipeline(
        tokenizer=byte_tokenizer(32),
        text_encoder=text_encoder,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        image_processor=processor,
        image_encoder=encoder,
        transformer=transformer,
    )
    return evaluated(pipe)


@pytest.fixture(scope="session")
def tiny_wan_vace():
    """WanVACEPipeline for 16x16, 9 frames."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, WanVACEPipeline, WanVACETransformer3DModel

    torch.manual_seed(0)
    vae = tiny_wan_vae()
    torch.manual_seed(0)
    text_encoder = tiny_t5()
    torch.manual_seed(0)
    transformer = WanVACETransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=3,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        vace_layers=[0, 2],
        vace_in_channels=96,
    )
    pipe = WanVACEPipeline(
        tokenizer=byte_tokenizer(32),
        text_encoder=text_encoder,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        transformer=transformer,
    )
    return evaluated(pipe)


def tiny_ip_adapter_state_dict(unet, image_embed_dim: int) -> dict:
    """Random IP-Adapter weights for ``unet`` in the layout ``_load_ip_adapter_weights`` reads.

    As in diffusers' IP-Adapter tests, but the image projection keeps its random
    initialisation (their test zeroes it), so the embeddings do reach the output.
    """
    from diffusers.models.attention_processor import IPAdapterAttnProcessor
    from diffusers.models.embeddings import ImageProjection

    cross: dict = {}
    key_id = 1
    blocks = unet.config.block_out_channels
    for name in unet.attn_processors:
        if name.endswith("attn1.processor") or "motion_module" in name:
            continue
        if name.startswith("mid_block"):
            hidden = blocks[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(blocks))[int(name[len("up_blocks.")])]
        else:
            hidden = blocks[int(name[len("down_blocks.")])]
        sd = IPAdapterAttnProcessor(
            hidden_size=hidden, cross_attention_dim=unet.config.cross_attention_dim
        ).state_dict()
        cross[f"{key_id}.to_k_ip.weight"] = sd["to_k_ip.0.weight"]
        cross[f"{key_id}.to_v_ip.weight"] = sd["to_v_ip.0.weight"]
        key_id += 2
    proj = ImageProjection(
        cross_attention_dim=unet.config.cross_attention_dim,
        image_embed_dim=image_embed_dim,
        num_image_text_embeds=4,
    ).state_dict()
    image_proj = {
        "proj.weight": proj["image_embeds.weight"],
        "proj.bias": proj["image_embeds.bias"],
        "norm.weight": proj["norm.weight"],
        "norm.bias": proj["norm.bias"],
    }
    return {"image_proj": image_proj, "ip_adapter": cross}


@pytest.fixture(scope="session")
def tiny_animatediff():
    """AnimateDiffPipeline (32x32, a few frames) with a CLIP image encoder and one random IP-Adapter."""
    import torch
    from diffusers import (
        AnimateDiffPipeline,
        AutoencoderKL,
        DDIMScheduler,
        MotionAdapter,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=2,
    )
    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4,
        norm_num_groups=2,
    )
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=0,
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=VOCAB,
            max_position_embeddings=77,
        )
    )
    torch.manual_seed(0)
    motion_adapter = MotionAdapter(
        block_out_channels=(32, 64),
        motion_layers_per_block=1,
        motion_norm_num_groups=2,
        motion_num_attention_heads=4,
    )
    torch.manual_seed(0)
    encoder, processor = tiny_clip_vision(32, 4)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="linear", clip_sample=False)
    pipe = AnimateDiffPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=byte_tokenizer(77),
        unet=unet,
        motion_adapter=motion_adapter,
        scheduler=scheduler,
        feature_extractor=processor,
        image_encoder=encoder,
    )
    torch.manual_seed(0)
    pipe.unet._load_ip_adapter_weights([tiny_ip_adapter_state_dict(pipe.unet, image_embed_dim=32)])
    return evaluated(pipe)


@pytest.fixture(scope="session")
def tiny_svd():
    """StableVideoDiffusionPipeline for 32x32, a few frames (its image encoder sees 224x224)."""
    import torch
    from diffusers import (
        AutoencoderKLTemporalDecoder,
        EulerDiscreteScheduler,
        StableVideoDiffusionPipeline,
        UNetSpatioTemporalConditionModel,
    )

    torch.manual_seed(0)
    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=8,
        in_channels=8,
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=32,
        num_attention_heads=8,
        projection_class_embeddings_input_dim=96,
        addition_time_embed_dim=32,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        interpolation_type="linear",
        num_train_timesteps=1000,
        prediction_type="v_prediction",
        sigma_max=700.0,
        sigma_min=0.002,
        steps_offset=1,
        timestep_spacing="leading",
        timestep_type="continuous",
        use_karras_sigmas=True,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLTemporalDecoder(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        latent_channels=4,
    )
    torch.manual_seed(0)
    encoder, processor = tiny_clip_vision(224, 32)
    pipe = StableVideoDiffusionPipeline(
        vae=vae, image_encoder=encoder, unet=unet, scheduler=scheduler, feature_extractor=processor
    )
    return evaluated(pipe)
