"""``agentmem demo``: the memory on the bundled events, then a story generated with memory in the loop.

Part 1 ingests ``lighthouse.jsonl`` into ``OUT/memory`` and shows a few
queries. Part 2 runs the bundled story ``stories/lighthouse.yaml`` end to end
on the storyboard back end (plan -> generate -> write back, shot by shot) into
``OUT/story`` and prints where the report is. Part 3 drives the bundled walk
``walks/street_return.yaml`` through the world loop (preview back end) into
``OUT/world`` and prints where the side-by-side video is. ``OUT`` is always a
new folder.
"""

from __future__ import annotations

from pathlib import Path

import click

from agentmem.formats.examples import example_path
from agentmem.search.query import Query
from agentmem.timeparse import format_time


def _print_hits(title: str, hits) -> None:
    click.secho(f"\n== {title}", bold=True)
    if not hits:
        click.echo("   (nothing)")
    for h in hits:
        comps = ", ".join(f"{c}={v:.3f}" for c, v in h.components.items() if not c.endswith("_raw"))
        click.echo(f"   [{format_time(h.t_start):>10}] {h.id}: {h.text}  ({comps})")


def run_demo(base: Path) -> Path:
    """Run the demo into ``base`` or, if that exists, the next free ``base-N``; returns the folder."""
    from agentmem.formats.ingest import ingest_file
    from agentmem.memory import Memory
    from agentmem.outdir import claim, finish, fresh_folder
    from agentmem.story.planner import facts_valid_at

    out = claim(fresh_folder(base), command="demo")
    directory = out / "memory"
    with Memory(directory) as mem:
        report = ingest_file(mem, example_path())
        st = mem.stats()
        click.secho(
            f"Ingested the bundled story into {directory}: {report.entities} entity declarations, "
            f"{report.events} events, {report.relations} facts; {st['outbox']} index jobs pending.",
            fg="green",
        )
        _print_hits("Events with Mara between t=0s and t=40s", mem.query(Query(entities=["Mara"], t0=0, t1=40)))
        _print_hits("Text + entity: 'the lamp' with Ida", mem.query(Query(text="the lamp", entities=["Ida"], k=3)))
        click.secho("\n== Mara's state as of several story times", bold=True)
        for t in (0, 47, 49, 86400):
            click.echo(f"   t={t:>6}: {mem.state_at('mara', t)}")
        click.secho("\n== Who held the lamp (stored facts, then who holds it at each time)", bold=True)
        facts = [r for r in mem.store.relations(["lamp"]) if r.predicate == "holds"]
        for r in facts:
            until = "open" if r.t_to is None else f"t={r.t_to:g}"
            click.echo(f"   {r.subject} {r.predicate} {r.object}  [t={r.t_from:g} .. {until})")
        # "holds" takes one holder at a time: the store closed Mara's fact when Ida took the lamp.
        for t in (0, 30, 86400, 90000):
            holders = [r.subject for r in facts_valid_at(facts, t)] or ["nobody"]
            click.echo(f"   t={t:>6}: {', '.join(holders)}")
    click.secho(f"\nTry: agentmem query --db {directory} --entity 'the keeper' --text storm", fg="cyan")
    run_story_demo(out / "story")
    run_world_demo(out / "world")
    finish(out)
    return out


def run_world_demo(out: Path, walk: str = "street_return") -> Path:
    """Drive a bundled walk through the world loop on the preview back end; returns the side-by-side video."""
    import time

    from agentmem.interactive.produce import run_walk
    from agentmem.interactive.walks import bundled_walks, load_walk
    from generators import get_world_generator

    w = load_walk(bundled_walks()[walk])
    click.secho(
        f"\n== Walking '{w.name}' through the world loop: camera path in, frames out, written back to the spatial "
        "memory (preview back end: keeps memory's render, invents only the holes; not a learned model)",
        bold=True,
    )
    t0 = time.perf_counter()
    out.mkdir(parents=True)
    res = run_walk(w, out / "memory", out, generator=get_world_generator("preview"))
    click.echo(f"   {res.steps} steps, {res.frames} frames; {res.invented_share:.1%} of pixels invented")
    side = Path(res.side_by_side.path).resolve()
    click.secho(f"Done in {time.perf_counter() - t0:.1f}s. Side by side: {side}", fg="green", bold=True)
    return side


def run_story_demo(out: Path, story: str = "lighthouse") -> str:
    """Generate a bundled story with the storyboard back end; returns the report's path."""
    import time

    from agentmem.story.format import bundled_stories, load_story
    from agentmem.story.produce import generate_story

    path = next(p for p in bundled_stories() if p.stem == story)
    st = load_story(path)
    click.secho(
        f"\n== Generating '{st.title}' ({len(st.shots)} shots) with memory in the loop "
        "(storyboard back end, a CPU preview renderer, not a learned model)",
        bold=True,
    )
    t0 = time.perf_counter()
    res = generate_story(st, out, progress=True)
    for p in res_plans(res.plan_json)[-3:]:
        loc = p["static"]["location"] or {}
        refs = ", ".join(f"{f['shot_id']}#{f['frame_index']}" for f in loc.get("reference_frames", [])) or "-"
        click.echo(f"   {p['shot_id']}: reference frames [{refs}]; prompt: {p['prompt'][:110]}...")
    sheet = Path(res.contact_sheet).resolve() if res.contact_sheet else "-"
    click.secho(f"Done in {time.perf_counter() - t0:.1f}s. Contact sheet: {sheet}", fg="green")
    click.secho(f"Report: {Path(str(res.report)).resolve()}", fg="green", bold=True)
    return str(res.report)


def res_plans(plan_json: str) -> list[dict]:
    import json

    return json.loads(Path(plan_json).read_text())
