"""``agentmem demo``: ingest the bundled story and show what the memory answers."""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path

import click

from agentmem.retrieval import Query
from agentmem.timeparse import format_time


def example_path(name: str = "lighthouse.jsonl") -> Path:
    """Path of a bundled example file."""
    return Path(str(files("agentmem") / "data" / name))


def _print_hits(title: str, hits) -> None:
    click.secho(f"\n== {title}", bold=True)
    if not hits:
        click.echo("   (nothing)")
    for h in hits:
        comps = ", ".join(f"{c}={v:.3f}" for c, v in h.components.items() if not c.endswith("_raw"))
        click.echo(f"   [{format_time(h.t_start):>10}] {h.id}: {h.text}  ({comps})")


def run_demo(directory: Path, *, fresh: bool = True) -> None:
    from agentmem.ingest import ingest_file
    from agentmem.memory import Memory

    if fresh and directory.exists():
        if not (directory / "memory.db").exists():
            raise click.ClickException(f"{directory} exists and is not an agentmem memory; pass another --db")
        shutil.rmtree(directory)
    with Memory(directory) as mem:
        report = ingest_file(mem, example_path())
        st = mem.stats()
        click.secho(f"Ingested the bundled story into {directory}: {report.entities} entity declarations, "
                    f"{report.events} events, {report.relations} facts; {st['outbox']} index jobs pending.", fg="green")
        _print_hits("Events with Mara between t=0s and t=40s", mem.query(Query(entities=["Mara"], t0=0, t1=40)))
        _print_hits("Events with both Mara and Ida", mem.query(Query(all_entities=["mara", "the girl"], k=5)))
        question = "who was pulled out of the water?"
        _print_hits(f"Text: {question!r}", mem.query(Query(text=question, k=3)))
        _print_hits("Text + entity: 'the lamp' with Ida", mem.query(Query(text="the lamp", entities=["Ida"], k=3)))
        _print_hits("Text + time range: 'boat' on day two (t in [86400, 90000])",
                    mem.query(Query(text="boat", t0=86400, t1=90000, k=3)))
        click.secho("\n== Mara's state as of several story times", bold=True)
        for t in (0, 47, 49, 86400):
            click.echo(f"   t={t:>6}: {mem.state_at('mara', t)}")
        click.secho("\n== Who held the lamp (facts with validity)", bold=True)
        for r in mem.store.relations(["lamp"]):
            until = "now" if r.t_to is None else f"t={r.t_to:g}"
            click.echo(f"   {r.subject} {r.predicate} {r.object}  [t={r.t_from:g} .. {until})")
    click.secho(f"\nTry: agentmem query --db {directory} --entity 'the keeper' --text storm", fg="cyan")
