"""Every shell and Python block of the README and of each page in ``docs/`` runs as written, in order.

Each page runs in a fresh folder of its own, as a reader who starts on that page would. A block may be left out
only behind an ``<!-- not run by tests: REASON -->`` line (installing, a GPU, model weights, minutes-long
benchmarks); the reasons are asserted to be few and stated. The folder holds a copy of ``agentmem/data``, as a
clone does, so the pages' relative paths resolve as they do for a reader.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)
SKIP = re.compile(r"<!-- not run by tests: (.+?) -->\s*$")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks_of(page: Path) -> list[tuple[str, str, str | None, int]]:
    """(language, body, reason it is left out or None, line) of every bash and python block of ``page``."""
    text = page.read_text()
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
    blocks = [b for page in PAGES for b in blocks_of(page)]
    left_out = [b for b in blocks if b[2] is not None]
    assert len(blocks) >= 20 and len(left_out) <= 14
    assert all(len(reason) > 10 for _, _, reason, _ in left_out)


def test_the_readme_is_short_and_links_only_to_pages_that_exist():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    for target in re.findall(r"\]\(((?:docs/)?[\w./-]+\.(?:md|png))\)", text):
        assert (ROOT / target).exists(), f"README.md links to missing {target}"


def test_the_pages_that_teach_by_example_have_blocks_to_run():
    teaching = {"README.md", "narrative.md", "stories.md", "spatial.md", "world-loop.md", "rules.md"}
    assert teaching <= {p.name for p in PAGES if any(b[2] is None for b in blocks_of(p))}


@pytest.mark.parametrize("page", [p for p in PAGES if any(b[2] is None for b in blocks_of(p))], ids=lambda p: p.name)
def test_page_blocks_run_as_written(page, tmp_path):
    runnable = [b for b in blocks_of(page) if b[2] is None]
    shutil.copytree(ROOT / "agentmem" / "data", tmp_path / "agentmem" / "data")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("AGENTMEM_DB", None)
    for lang, body, _, line in runnable:
        cmd = ["bash", "-euo", "pipefail", "-c", body] if lang == "bash" else [sys.executable, "-c", body]
        res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, (
            f"{page.name} line {line} ({lang}) failed:\n{body}\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
        )
        assert "Traceback" not in res.stderr, f"{page.name} line {line} printed a traceback:\n{res.stderr[-3000:]}"
