"""Every shell and Python block of the README runs as written, in order, in a fresh folder.

A block may be left out only behind an ``<!-- not run by tests: REASON -->`` line (installing, a GPU, model
weights, minutes-long benchmarks); the reasons are asserted to be few and stated. The folder holds a copy of
``agentmem/data``, as a clone does, so the README's relative paths resolve as they do for a reader.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)
SKIP = re.compile(r"<!-- not run by tests: (.+?) -->\s*$")


def readme_blocks():
    text = (ROOT / "README.md").read_text()
    out = []
    for m in FENCE.finditer(text):
        lang, body = m.group(1), m.group(2)
        if lang not in ("bash", "python"):
            continue
        before = text[: m.start()].rstrip("\n").splitlines()[-1] if m.start() else ""
        skip = SKIP.search(before)
        out.append((lang, body, skip.group(1) if skip else None, text.count("\n", 0, m.start()) + 1))
    return out


def test_only_a_few_blocks_are_left_out_and_each_says_why():
    blocks = readme_blocks()
    left_out = [b for b in blocks if b[2] is not None]
    assert len(blocks) >= 10 and len(left_out) <= 9
    assert all(len(reason) > 10 for _, _, reason, _ in left_out)


def test_readme_blocks_run_as_written(tmp_path):
    shutil.copytree(ROOT / "agentmem" / "data", tmp_path / "agentmem" / "data")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("AGENTMEM_DB", None)
    ran = 0
    for lang, body, skip, line in readme_blocks():
        if skip is not None:
            continue
        cmd = ["bash", "-euo", "pipefail", "-c", body] if lang == "bash" else [sys.executable, "-c", body]
        res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, (
            f"README.md line {line} ({lang}) failed:\n{body}\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
        )
        assert "Traceback" not in res.stderr, f"README.md line {line} printed a traceback:\n{res.stderr[-3000:]}"
        ran += 1
    assert ran == len([b for b in readme_blocks() if b[2] is None]) >= 6
