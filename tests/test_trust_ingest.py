"""Hostile transforms datasets through `agentmem world ingest`: one line naming the file, the frame and the field,
no traceback or warning, nothing stored (issue 18, items 7 and 8)."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from agentmem.cli.main import cli
from agentmem.formats.transforms import write_transforms
from agentmem.spatial.camera import Intrinsics, look_at
from agentmem.spatial.frames import Frame

K = Intrinsics.from_fov(70.0, 48, 36)
# Any warning (numpy's overflow, Pillow's decompression bomb) is an error here: the user must see one line only.
pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture
def dataset(tmp_path) -> Path:
    """Two frames of noise at 2 m, written by agentmem itself: the baseline every test spoils in one place."""
    rng = np.random.default_rng(0)
    frames = [
        Frame(f"f{i}", float(i), look_at([i, 1.6, 5.0], [0.0, 1.6, 0.0]), K,
              rng.integers(0, 255, (K.h, K.w, 3), dtype=np.uint8), np.full((K.h, K.w), 2.0, np.float32))
        for i in range(2)
    ]  # fmt: skip
    return write_transforms(tmp_path / "scene", frames)


def _ingest(transforms: Path, db: Path, *fields: str) -> str:
    res = CliRunner().invoke(cli, ["world", "ingest", str(transforms), "--db", str(db)])
    lines = res.output.strip().splitlines()
    assert res.exit_code == 1 and len(lines) == 1, res.output
    assert lines[0].startswith("Error: ") and str(transforms) in lines[0], lines[0]
    assert all(f in lines[0] for f in fields), lines[0]
    assert not (db / "memory.db").exists()  # validated in full before the memory is opened: nothing stored
    return lines[0]


def _spoil(dataset: Path, edit) -> Path:
    data = json.loads(dataset.read_text())
    edit(data)
    bad = dataset.parent / "bad.json"
    bad.write_text(json.dumps(data))
    return bad


def _png_header(path: Path, w: int, h: int) -> None:
    """A 1-bit greyscale PNG of w x h, all black: a few KB on disk, w * h pixels once decoded."""
    row = b"\x00" * (1 + (w + 7) // 8)
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(h)) + z.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


@pytest.mark.parametrize(
    ("side", "message"),
    [
        (20_000, "file_path: the image's header claims far too many pixels to decode"),  # Pillow's bomb error
        (10_000, "file_path: the image's header claims far too many pixels to decode"),  # Pillow's bomb warning
        (9_000, "file_path: image is 9000x9000, intrinsics say 48x36"),  # refused from the header, never decoded
    ],
)
def test_a_huge_image_is_refused_from_its_header(dataset, tmp_path, side, message):
    _png_header(dataset.parent / "images" / "00000.png", side, side)
    _ingest(dataset, tmp_path / "mem", "frame 'images/00000.png'", message)


@pytest.mark.parametrize(
    ("file_path", "label", "message"),
    [
        ("images/a\x00.png", "frames[0]", "file_path: contains a NUL character"),
        ("images/" + "a" * 5000 + ".png", "frames[0]", "file_path: a path may have 1024 characters and 255 per part"),
        ("images/" + "a" * 300 + ".png", "frames[0]", "file_path: a path may have 1024 characters and 255 per part"),
        ("images/\ud800.png", "frame 'images/\\ud800.png'", "file_path: contains a lone surrogate"),
    ],
)
def test_a_file_path_no_file_can_have_is_one_line(dataset, tmp_path, file_path, label, message):
    bad = _spoil(dataset, lambda d: d["frames"][0].update(file_path=file_path))
    _ingest(bad, tmp_path / "mem", label, message)


def test_a_symlink_loop_is_one_line(dataset, tmp_path):
    os.symlink("loop.png", dataset.parent / "loop.png")
    bad = _spoil(dataset, lambda d: d["frames"][1].update(depth_file_path="loop.png"))
    _ingest(bad, tmp_path / "mem", "frame 'images/00001.png'", "depth_file_path: ")


def test_a_npy_header_is_checked_before_its_array_is_allocated(dataset, tmp_path):
    npy = dataset.parent / "depth" / "huge.npy"
    with npy.open("wb") as fh:  # the header alone: (200000, 200000) float32 would be 160 GB
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (200_000, 200_000)})
    bad = _spoil(dataset, lambda d: d["frames"][0].update(depth_file_path="depth/huge.npy"))
    _ingest(bad, tmp_path / "mem", "frame 'images/00000.png'", "depth_file_path: depth is 200000x200000, the image is")


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.full((36, 48), 1e300), "depth_file_path: values up to 1e+300 m"),  # float64: no overflow in the cast
        (np.full((36, 48), 2, np.int32), "depth_file_path: .npy depth must be float metres, got int32"),
        (np.full((36 * 48,), 2.0), "depth_file_path: .npy depth must be a 2-D array, got shape [1728]"),
        (np.array(["x"] * 4, dtype=object), "depth_file_path: .npy depth must be float metres, got object"),
    ],
)
def test_a_bad_npy_depth_is_one_line(dataset, tmp_path, array, message):
    np.save(dataset.parent / "depth" / "d.npy", array, allow_pickle=array.dtype == object)
    bad = _spoil(dataset, lambda d: d["frames"][0].update(depth_file_path="depth/d.npy"))
    _ingest(bad, tmp_path / "mem", "frame 'images/00000.png'", message)


def test_a_truncated_npy_is_one_line(dataset, tmp_path):
    npy = dataset.parent / "depth" / "short.npy"
    np.save(npy, np.full((36, 48), 2.0, np.float32))
    npy.write_bytes(npy.read_bytes()[:-100])
    bad = _spoil(dataset, lambda d: d["frames"][0].update(depth_file_path="depth/short.npy"))
    _ingest(bad, tmp_path / "mem", "frame 'images/00000.png'", "depth_file_path: not a readable .npy array")


@pytest.mark.parametrize("scale", [1e308, 1e-300, 0, -1, True])
def test_depth_unit_scale_factor_out_of_range_is_refused_before_any_arithmetic(dataset, tmp_path, scale):
    bad = _spoil(dataset, lambda d: d.update(depth_unit_scale_factor=scale))
    _ingest(bad, tmp_path / "mem", "depth_unit_scale_factor: must be metres per unit in [1e-06, 10]")


def test_json_nested_absurdly_deep_or_with_huge_integers_is_one_line(dataset, tmp_path):
    deep = dataset.parent / "deep.json"
    deep.write_text('{"frames": ' + "[" * 3000 + "]" * 3000 + "}")
    _ingest(deep, tmp_path / "mem", "JSON nested too deeply")
    huge = dataset.parent / "huge.json"
    huge.write_text(dataset.read_text().replace('"time": 1.0', '"time": 1' + "0" * 5000, 1))
    _ingest(huge, tmp_path / "mem", "unreadable JSON value")


def test_a_label_of_thousands_of_digits_is_one_line(dataset, tmp_path):
    Image.fromarray(np.zeros((K.h, K.w), np.uint16)).save(dataset.parent / "inst.png")
    labels = {"1" * 5000: "cart"}
    bad = _spoil(dataset, lambda d: d["frames"][0].update(instances_path="inst.png", instance_ids=labels))
    _ingest(bad, tmp_path / "mem", "frame 'images/00000.png'", "instance_ids: ", "needs a positive integer label")


def test_a_views_file_nested_absurdly_deep_is_one_line(tmp_path):
    views = tmp_path / "views.json"
    views.write_text("[" * 3000 + "]" * 3000)
    res = CliRunner().invoke(cli, ["world", "retrieve", "--db", str(tmp_path / "mem"), "--views", str(views)])
    assert res.exit_code == 1 and res.output.strip().splitlines() == [
        f"Error: FormatError: {views}: JSON nested too deeply"
    ]
