"""Run a story end to end and write its outputs (what ``agentmem generate`` and ``agentmem plan`` do).

Output folder layout::

    DIR/plan.json            the list of ShotPlans (ShotPlan.to_dict), in story order
    DIR/story.json           the validated story (reference image paths resolved)
    DIR/run.json             back end, geometry, per-shot video and keyframe paths, timings
    DIR/frames/<shot>/       keyframe PNGs written back to memory (first, middle, last)
    DIR/memory/              the memory the story was generated with
    DIR/shots/<shot>.mp4     one video per shot (or .gif)            [generate only]
    DIR/story.mp4            the whole story (or .gif)               [generate only]
    DIR/contact_sheet.png    one row per shot, with captions         [generate only]
    DIR/report.html          plans, memory traces, videos            [generate only]

``plan`` runs the same loop (it has to: later plans reference the frames that
earlier shots actually showed) with the storyboard back end at the same
geometry, and writes only the plans, the story, the run record and the
keyframes they reference.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agentmem.errors import BadInputError
from agentmem.outdir import claim, finish, inside
from agentmem.story.director import RenderOptions, StoryRun, run_story
from agentmem.story.format import Story
from agentmem.story.planner import PlannerConfig

_DEFAULT = object()
DEFAULT_RENDER = RenderOptions(width=256, height=160, num_frames=None, fps=8)


@dataclass
class Outputs:
    """Paths written by :func:`generate_story` / :func:`plan_story`."""

    out_dir: str
    plan_json: str
    story_json: str
    run_json: str
    shot_videos: dict[str, str] = field(default_factory=dict)
    story_video: str | None = None
    contact_sheet: str | None = None
    report: str | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def open_story_memory(out_dir: Path, text_embedder: Any = _DEFAULT):
    """A new memory in ``out_dir/memory``; an existing one is never reused or removed."""
    from agentmem.memory import Memory

    mdir = out_dir / "memory"
    if mdir.exists():
        raise BadInputError(
            f"--out: {mdir} already exists and agentmem did not write it in this folder; choose another --out"
        )
    kwargs = {} if text_embedder is _DEFAULT else {"text_embedder": text_embedder}
    return Memory(mdir, **kwargs)


# The names each command writes in its folder (see the module docstring); claim() refuses a folder where one of
# them holds something agentmem did not write (bar a person's files inside shots/, which are kept), and a failed
# run's files under them are what --force replaces.
_PLAN = ("plan.json", "story.json", "run.json", "frames", "memory")
OUTPUTS = {"plan": _PLAN, "generate": (*_PLAN, "shots/", "story.mp4", "story.gif", "contact_sheet.png", "report.html")}


def _prepare(out_dir: str | os.PathLike, command: str, force: bool) -> Path:
    """Claim the output folder (:mod:`agentmem.outdir`): only an earlier run's own files are ever replaced."""
    return claim(out_dir, command=command, force=force, writes=OUTPUTS[command])


def _write_common(
    out: Path, run: StoryRun, backend: str, render: RenderOptions, seconds: float, videos: dict[str, str]
) -> tuple[str, str, str]:
    plan_json, story_json, run_json = out / "plan.json", out / "story.json", out / "run.json"
    plan_json.write_text(json.dumps(relative_paths([p.to_dict() for p in run.plans], out), indent=1))
    story_json.write_text(json.dumps(relative_paths(run.story.to_dict(), out), indent=1))
    clip0 = run.clips[0]
    record = {
        "title": run.story.title,
        "source": run.story.source,
        "backend": backend,
        "render": {
            **asdict(render),
            "width": int(clip0.frames.shape[2]),
            "height": int(clip0.frames.shape[1]),
            "fps": int(clip0.fps),
        },
        "seconds": round(seconds, 2),
        "shots": [
            {
                "id": r.shot.id,
                "n_frames": int(len(r.clip.frames)),
                "video": videos.get(r.shot.id),
                "keyframes": [{"frame_index": k.frame_index, "role": k.role, "path": k.path} for k in r.keyframes],
                "metadata": _jsonable(r.clip.metadata),
            }
            for r in run.results
        ],
    }
    run_json.write_text(json.dumps(relative_paths(record, out), indent=1))
    return str(plan_json), str(story_json), str(run_json)


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def relative_paths(obj: Any, out: Path) -> Any:
    """``obj`` with every absolute path of an existing file made relative to ``out``, so the folder can move.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (out / "a.png").write_bytes(b"")
    >>> relative_paths({"frames": [str(out / "a.png")], "text": "/not/a/file"}, out)
    {'frames': ['a.png'], 'text': '/not/a/file'}
    """
    if isinstance(obj, dict):
        return {k: relative_paths(v, out) for k, v in obj.items()}
    if isinstance(obj, list):
        return [relative_paths(v, out) for v in obj]
    if isinstance(obj, str) and os.path.isabs(obj) and os.path.exists(obj):
        return os.path.relpath(obj, out.resolve())
    return obj


def _run(
    story: Story,
    out: Path,
    gen: Any,
    render: RenderOptions,
    planner_config: PlannerConfig | None,
    text_embedder: Any,
    progress: bool,
) -> tuple[StoryRun, float]:
    t0 = time.perf_counter()
    with open_story_memory(out, text_embedder) as mem:
        run = run_story(
            story, mem, gen, str(out / "frames"), render=render, planner_config=planner_config, progress=progress
        )
    return run, time.perf_counter() - t0


def generate_story(
    story: Story,
    out_dir: str | os.PathLike,
    *,
    backend: str = "storyboard",
    backend_options: dict | None = None,
    render: RenderOptions = DEFAULT_RENDER,
    video_format: str = "mp4",
    planner_config: PlannerConfig | None = None,
    text_embedder: Any = _DEFAULT,
    progress: bool = False,
    force: bool = False,
) -> Outputs:
    """Generate every shot with memory in the loop and write videos, contact sheet, plans and report.

    ``out_dir`` must be new or empty; with ``force``, an earlier run's own files
    in it are replaced (see :mod:`agentmem.outdir`).
    """
    from agentmem.story.report import write_report
    from generators import contact_sheet, get_generator, write_story_video, write_video

    # 1. Check inputs and build the back end, then claim the folder: a bad option creates nothing.
    if video_format not in ("mp4", "gif"):
        raise BadInputError(f"--format: must be mp4 or gif, got {video_format!r}")
    gen = get_generator(backend, **(backend_options or {}))
    out = _prepare(out_dir, "generate", force)
    # 2. Run the closed loop.
    run, seconds = _run(story, out, gen, render, planner_config, text_embedder, progress)
    # 3. Videos: one per shot and one for the story.
    notes: list[str] = []
    videos: dict[str, str] = {}
    for r in run.results:
        vf = write_video(r.clip, str(inside(out, f"shots/{r.shot.id}.{video_format}")))
        videos[r.shot.id] = os.path.relpath(vf.path, out)
        if vf.note:
            notes.append(vf.note)
    story_video = write_story_video(run.clips, str(out / f"story.{video_format}"))
    # 4. Contact sheet, plans, run record and report.
    sheet = contact_sheet(run.clips, str(out / "contact_sheet.png"), plans=run.plans)
    plan_json, story_json, run_json = _write_common(out, run, backend, render, seconds, videos)
    report = write_report(
        out,
        run,
        videos=videos,
        story_video=os.path.relpath(story_video.path, out),
        contact_sheet=sheet,
        seconds=seconds,
        backend=backend,
    )
    finish(out)
    return Outputs(
        str(out), plan_json, story_json, run_json, videos, story_video.path, sheet, report, seconds, sorted(set(notes))
    )


def plan_story(
    story: Story,
    out_dir: str | os.PathLike,
    *,
    render: RenderOptions = DEFAULT_RENDER,
    planner_config: PlannerConfig | None = None,
    text_embedder: Any = _DEFAULT,
    progress: bool = False,
    force: bool = False,
) -> Outputs:
    """Write the plans only, simulating the write-back with storyboard renders (see the module docstring)."""
    from generators import get_generator

    out = _prepare(out_dir, "plan", force)
    run, seconds = _run(story, out, get_generator("storyboard"), render, planner_config, text_embedder, progress)
    plan_json, story_json, run_json = _write_common(out, run, "storyboard", render, seconds, {})
    finish(out)
    return Outputs(str(out), plan_json, story_json, run_json, seconds=seconds)


__all__ = ["DEFAULT_RENDER", "Outputs", "generate_story", "open_story_memory", "plan_story"]
