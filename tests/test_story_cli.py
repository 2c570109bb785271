"""CLI: generate, plan, eval consistency and bench planning (small renders, no text model)."""

import json
import traceback
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from agentmem.bench.planning import synthetic_events
from agentmem.cli.main import cli
from agentmem.story.format import bundled_stories, load_story

SMALL = ["--width", "96", "--height", "64", "--frames", "8", "--text-embedder", "none"]


def run(*args):
    res = CliRunner().invoke(cli, [str(a) for a in args])
    # The traceback too: an intermittent failure of `generate` inside the full suite (about one run in four,
    # never alone) has not been caught with its cause yet.
    trace = "".join(traceback.format_exception(*res.exc_info)) if res.exc_info and res.exit_code != 0 else ""
    assert res.exit_code == 0, res.output + trace
    return res.output


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "lighthouse"
    output = run("generate", "lighthouse", "--backend", "storyboard", "--out", out, *SMALL)
    return out, output


def test_generate_writes_videos_sheet_plans_and_report(generated):
    out, output = generated
    assert "generated 14 shots of 'The Lighthouse Keeper'" in output and "report.html" in output
    videos = sorted(p.name for p in (out / "shots").iterdir())
    assert len(videos) == 14 and videos[0] in ("s01.mp4", "s01.gif")
    assert any((out / f"story.{ext}").stat().st_size > 0 for ext in ("mp4", "gif") if (out / f"story.{ext}").exists())
    from PIL import Image

    with Image.open(out / "contact_sheet.png") as im:
        assert im.height > 14 * 40  # one row per shot
    plans = json.loads((out / "plan.json").read_text())
    assert [p["shot_id"] for p in plans] == [f"s{i:02d}" for i in range(1, 15)]
    report = (out / "report.html").read_text()
    assert "data:image/png;base64," in report and "Memory trace" in report and "shots/s07." in report
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["render"]["width"] == 96 and run_json["shots"][0]["keyframes"][1]["role"] == "middle"


def test_plan_only_matches_generate(generated, tmp_path):
    out, _ = generated
    output = run("plan", "lighthouse", "--out", tmp_path / "p", "--print", *SMALL)
    assert "planned 14 shots" in output and "s05: refs [s01#3]" in output
    plans = json.loads((tmp_path / "p" / "plan.json").read_text())
    gen = json.loads((out / "plan.json").read_text())

    def key(p):
        loc = p["static"]["location"]
        return p["prompt"], loc and [f["shot_id"] for f in loc["reference_frames"]]

    assert [key(p) for p in plans] == [key(p) for p in gen]
    assert not (tmp_path / "p" / "report.html").exists()


def test_eval_consistency_memory_beats_text_only(generated, tmp_path):
    out, _ = generated
    output = run("eval", "consistency", out, "--out", tmp_path / "eval")
    assert "with memory" in output and "entity identity" in output
    rows = json.loads((tmp_path / "eval" / "consistency.json").read_text())
    assert {r["measure"] for r in rows} == {"entity identity", "location"}
    for r in rows:
        assert r["with_memory"] > r["without_memory"] + 0.2, r
    assert (tmp_path / "eval" / "consistency.png").stat().st_size > 1000


def test_eval_needs_a_generated_folder(tmp_path):
    res = CliRunner().invoke(cli, ["eval", "consistency", str(tmp_path)])
    assert res.exit_code == 1 and "story.json is missing" in res.output


def test_bench_planning_small(tmp_path):
    output = run(
        "bench",
        "planning",
        "--events",
        300,
        "--repeats",
        1,
        "--story",
        "lighthouse",
        "--text-embedder",
        "none",
        "--out",
        tmp_path,
    )
    assert "ms/shot" in output and "ratio" in output
    res = json.loads((tmp_path / "planning.json").read_text())
    assert res["shots"] == 14 and res["samples"] == 14 and res["ms"]["large"]["p50"] > 0
    # The synthetic frame events with a pose are in the frame store too, for the posed shots' reference search.
    stories = [load_story(p) for p in bundled_stories() if p.stem == "lighthouse"]
    posed = [e for e in synthetic_events(stories, 300, np.random.default_rng(0)) if "camera" in e]
    assert res["posed_frames"] == len(posed) > 50
    assert Path(tmp_path / "planning.json").exists()
