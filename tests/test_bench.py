"""The benchmarks run end to end through the CLI at small sizes (their numbers come from full-size runs)."""

import json

from click.testing import CliRunner

from agentmem.cli.main import cli


def test_bench_compression_keeps_the_working_set_and_reports_lock_holds(tmp_path):
    out = tmp_path / "res"
    res = CliRunner().invoke(
        cli,
        [
            "bench",
            "compression",
            "--events",
            "3000",
            "--every",
            "1000",
            "--keep-events",
            "500",
            "--queries",
            "5",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    r = json.loads((out / "compression.json").read_text())
    last = r["checkpoints"][-1]
    assert r["runs"] >= 1 and last["events"] == 3000
    # compression left at most the kept raw events (plus the open episode's) active; the rest is archived
    assert last["archived_events"] + last["active"]["events"] == 3000 and last["archived_events"] >= 2000
    assert 0 < r["rates"]["longest_compress_write_s"] and 0 < r["rates"]["longest_ingest_batch_write_s"]
    assert "longest write transaction: compression" in res.output and (out / "compression.png").is_file()


def test_bench_synthetic_reports_query_latency_beside_its_baselines(tmp_path):
    out = tmp_path / "res"
    res = CliRunner().invoke(cli, ["bench", "synthetic", "--events", "2000", "--queries", "10", "--out", str(out)])
    assert res.exit_code == 0, res.output
    r = json.loads((out / "synthetic.json").read_text())
    assert r["events"] == 2000
    assert "baseline brute force + filter" in res.output and "baseline MiniLM query embedding alone" in res.output


def test_bench_spatial_scores_every_policy_and_the_oracle_and_times_the_scale_run(tmp_path):
    out = tmp_path / "res"
    args = ["bench", "spatial", "--frames", "40", "--targets", "2", "--walk", "loop", "--scale", "150",
            "--scale", "300", "--pool", "60", "--out", str(out)]  # fmt: skip
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    r = json.loads((out / "spatial.json").read_text())
    loop = r["walks"]["loop"]
    assert set(loop["coverage"]) == {"recent", "pose", "fov", "overlap", "map", "story", "oracle"}
    assert all(set(per) == {"1", "4", "8"} for per in loop["coverage"].values())
    # The oracle is greedy set cover with true visibility: nothing covers more with one frame.
    assert all(per["1"] <= loop["coverage"]["oracle"]["1"] + 1e-9 for per in loop["coverage"].values())
    assert set(loop["render"]["map"]) == {"coverage", "psnr", "false_cover"}
    scale = r["scale"]
    assert [row["frames"] for row in scale["rows"]] == [150, 300]
    # 300 frames replay a 60-view pool: the second half adds no voxel.
    assert scale["rows"][0]["map_voxels"] == scale["rows"][1]["map_voxels"] and scale["rss_mb"] > 0
    assert scale["compression"]["active"] <= scale["compression"]["frames"]
    assert (out / "spatial.png").is_file() and (out / "spatial_scale.png").is_file()


def test_bench_spatial_refuses_an_unknown_walk(tmp_path):
    res = CliRunner().invoke(cli, ["bench", "spatial", "--walk", "spiral", "--out", str(tmp_path)])
    assert res.exit_code == 1 and "--walk: unknown walk 'spiral'" in res.output
