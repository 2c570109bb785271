"""CLI commands for stories: ``generate``, ``plan``, ``eval consistency`` and ``bench planning``.

Registered on the main group in :mod:`agentmem.cli.main`.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from agentmem.cli.common import clean_errors
from agentmem.errors import BadInputError
from generators.base import available_generators


def resolve_story_path(story: str) -> Path:
    """A story file path, or the name of a bundled story (``lighthouse``, ``night_market``, ``forest_courier``)."""
    from agentmem.errors import MediaNotFoundError
    from agentmem.story.format import bundled_stories

    p = Path(story)
    if p.is_file():
        return p
    for b in bundled_stories():
        if b.stem == story:
            return b
    names = ", ".join(b.stem for b in bundled_stories())
    raise MediaNotFoundError(f"story file not found: {story} (bundled stories: {names})")


def _text_embedder(name: str):
    if name == "none":
        return None
    from agentmem.encoders.embedders import text_embedder

    return text_embedder(name)


def _render_opts(width: int, height: int, frames: int | None, fps: int):
    from agentmem.story.director import RenderOptions

    return RenderOptions(width=width, height=height, num_frames=frames, fps=fps)


def force_option(f):
    return click.option(
        "--force",
        is_flag=True,
        help="Replace the files of an earlier run in --out; files agentmem did not write are never touched.",
    )(f)


def render_options(f):
    f = click.option("--fps", default=8, show_default=True, help="Frames per second.")(f)
    f = click.option("--frames", "frames", type=int, default=None, help="Frames per shot (default: duration x fps).")(f)
    f = click.option("--height", default=160, show_default=True, help="Frame height in pixels.")(f)
    f = click.option("--width", default=256, show_default=True, help="Frame width in pixels.")(f)
    f = click.option(
        "--text-embedder",
        "text_model",
        default="minilm",
        show_default=True,
        help="Text embedder of the story memory: minilm, a sentence-transformers name or path, or none.",
    )(f)
    return f


@click.command()
@click.argument("story")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option(
    "--backend",
    default="storyboard",
    show_default=True,
    type=click.Choice(available_generators()),
    help="Video back end: storyboard is a CPU preview renderer; the others are diffusers pipelines and need --model.",
)
@click.option("--model", default=None, help="Weights (local path or hub id) for a diffusers back end.")
@click.option(
    "--format",
    "video_format",
    type=click.Choice(["mp4", "gif"]),
    default="mp4",
    show_default=True,
    help="Video format (mp4 falls back to gif without imageio-ffmpeg).",
)
@force_option
@render_options
@clean_errors
def generate(
    story: str,
    out: str,
    backend: str,
    model: str | None,
    video_format: str,
    force: bool,
    text_model: str,
    width: int,
    height: int,
    frames: int | None,
    fps: int,
) -> None:
    """Generate a story shot by shot with memory in the loop.

    STORY is a YAML or JSON story file, or a bundled story's name. Writes a
    video per shot and for the story, a contact sheet, plan.json and
    report.html into --out, which must be new or empty (see --force).

    Example: agentmem generate lighthouse --backend storyboard --out out/lighthouse
    """
    from agentmem.story.format import load_story
    from agentmem.story.produce import generate_story

    if backend != "storyboard" and not model:
        raise BadInputError(
            f"--backend {backend} is a diffusers pipeline: give its weights with --model (a local folder or a hub id)"
        )
    st = load_story(resolve_story_path(story))
    res = generate_story(
        st,
        out,
        backend=backend,
        backend_options={"model": model} if model else None,
        render=_render_opts(width, height, frames, fps),
        video_format=video_format,
        text_embedder=_text_embedder(text_model),
        progress=True,
        force=force,
    )
    click.echo(f"generated {len(res.shot_videos)} shots of {st.title!r} in {res.seconds:.1f}s ({backend})")
    for note in res.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"story video:   {res.story_video}\ncontact sheet: {res.contact_sheet}\nplans:         {res.plan_json}")
    click.echo(f"report:        {res.report}")


@click.command("plan")
@click.argument("story")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--print", "show", is_flag=True, help="Also print each shot's prompt and references.")
@force_option
@render_options
@clean_errors
def plan_cmd(
    story: str,
    out: str,
    show: bool,
    force: bool,
    text_model: str,
    width: int,
    height: int,
    frames: int | None,
    fps: int,
) -> None:
    """Write the ShotPlans of a story (plan.json) without generating videos.

    Later plans reference what earlier shots showed, so the loop still runs:
    each shot is rendered by the storyboard back end at the same geometry as
    `agentmem generate` and written back; only its keyframes are kept.

    Example: agentmem plan lighthouse --out out/lighthouse-plans
    """
    from agentmem.story.format import load_story
    from agentmem.story.produce import plan_story

    st = load_story(resolve_story_path(story))
    res = plan_story(
        st,
        out,
        render=_render_opts(width, height, frames, fps),
        text_embedder=_text_embedder(text_model),
        progress=True,
        force=force,
    )
    if show:
        for p in json.loads(Path(res.plan_json).read_text()):
            loc = p["static"]["location"] or {}
            refs = ", ".join(f"{f['shot_id']}#{f['frame_index']}" for f in loc.get("reference_frames", []))
            cont = p["dynamic"]["continue_from"]
            click.echo(
                f"{p['shot_id']}: refs [{refs}] continue_from "
                f"{cont['shot_id'] + '#' + str(cont['frame_index']) if cont else '-'}\n    {p['prompt']}"
            )
    click.echo(f"planned {len(st.shots)} shots of {st.title!r} in {res.seconds:.1f}s; plans: {res.plan_json}")


@click.group("eval")
def eval_group() -> None:
    """Evaluate generated stories.

    Example: agentmem eval consistency out/lighthouse
    """


@eval_group.command("consistency")
@click.argument("dirs", nargs=-1, type=click.Path(file_okay=False))
@click.option("--story", "stories", multiple=True, help="Generate this story first (repeatable); name or file.")
@click.option("--bundled", is_flag=True, help="Generate and evaluate every bundled story.")
@click.option(
    "--out",
    default="bench-results/consistency",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where consistency.json, consistency.png and generated stories go.",
)
@click.option(
    "--text-embedder",
    "text_model",
    default="minilm",
    show_default=True,
    help="Text embedder for stories generated here.",
)
@clean_errors
def eval_consistency(dirs: tuple[str, ...], stories: tuple[str, ...], bundled: bool, out: str, text_model: str) -> None:
    """Identity and location consistency, with memory vs a memory-less planner.

    Each DIR was written by `agentmem generate` (storyboard); the memory-less
    condition is rendered in the same run from the shot text only. Prints a
    table and writes a plot.

    Example: agentmem eval consistency --bundled --out bench-results/consistency
    """
    from agentmem.outdir import claim_files, distinct, inside, record_files, safe_name
    from agentmem.story.consistency import evaluate_dir, format_table, plot, to_json
    from agentmem.story.format import bundled_stories, load_story
    from agentmem.story.produce import generate_story

    found = [resolve_story_path(s) for s in stories] + (bundled_stories() if bundled else [])
    paths = list({p.resolve(): p for p in found}.values())  # a story named twice is generated once
    # Each story is generated into OUT/<file stem>: two stories of one stem are refused rather than renamed.
    names = [safe_name(p.stem) for p in paths]
    distinct([(str(p), name) for p, name in zip(paths, names)], "--story")
    targets = list(dirs)
    if not targets and not paths:
        raise BadInputError("give a DIR written by `agentmem generate`, --story FILE or --bundled")
    outdir = claim_files(out, ["consistency.json", "consistency.png"])
    emb = _text_embedder(text_model) if paths else None
    for p, name in zip(paths, names):
        d = inside(outdir, name)
        # Only an earlier evaluation's own files are replaced (agentmem.outdir).
        generate_story(load_story(p), d, text_embedder=emb, video_format="gif", progress=True, force=True)
        targets.append(str(d))
    measures = [m for d in targets for m in evaluate_dir(d)]
    click.echo(format_table(measures))
    (outdir / "consistency.json").write_text(json.dumps(to_json(measures), indent=1))
    png = plot(measures, outdir / "consistency.png")
    record_files(outdir, ["consistency.json", "consistency.png"], command="eval consistency")
    click.echo(f"wrote {outdir / 'consistency.json'} and {png}")


@click.command("planning")
@click.option("--events", "n_events", default=100_000, show_default=True, help="Synthetic events in memory.")
@click.option("--repeats", default=3, show_default=True, help="Times each shot is planned.")
@click.option("--story", "stories", multiple=True, help="Only these bundled stories (default: all).")
@click.option(
    "--text-embedder",
    "text_model",
    default="minilm",
    show_default=True,
    help="Text embedder for retrieval (minilm, a name or path, or none: lexical retrieval only).",
)
@click.option("--out", type=click.Path(file_okay=False), default="bench-results", show_default=True)
@clean_errors
def bench_planning(n_events: int, repeats: int, stories: tuple[str, ...], text_model: str, out: str) -> None:
    """Planning ms/shot with a large memory, against an empty-memory baseline.

    Example: agentmem bench planning --events 100000
    """
    from agentmem.bench.planning import format_result, run_planning
    from agentmem.outdir import claim_files, record_files

    outdir = claim_files(out, ["planning.json"])
    res = run_planning(
        n_events=n_events,
        repeats=repeats,
        only=list(stories) or None,
        text_model=None if text_model == "none" else text_model,
    )
    click.echo(format_result(res))
    (outdir / "planning.json").write_text(json.dumps(res.to_dict(), indent=2))
    record_files(outdir, ["planning.json"], command="bench")
    click.echo(f"wrote {outdir / 'planning.json'}")


__all__ = ["bench_planning", "eval_group", "generate", "plan_cmd", "resolve_story_path"]
