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
