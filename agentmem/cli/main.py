"""The ``agentmem`` command line: a thin shell over the library.

Every command maps onto one library call; errors the library raises on
purpose (:class:`agentmem.errors.AgentMemError`) print as one line and exit 1.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from agentmem.cli.bench import bench
from agentmem.cli.common import (
    chroma_token_option,
    clean_errors,
    db_option,
    echo_json,
    open_memory,
    parse_time_opt,
    progress_bar,
    require_db,
)
from agentmem.cli.graph import register as register_graph_commands
from agentmem.cli.story import bench_planning, eval_group, generate, plan_cmd
from agentmem.cli.world import register as register_world_commands
from agentmem.formats.ingest import FORMATS
from agentmem.model import ENTITY_KINDS
from agentmem.search.fusion import PRESETS


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="agentmem")
def cli() -> None:
    """agentmem: long-term multimodal memory for narrative video generation.

    Example: agentmem demo
    """


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@db_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="Input format (detected when left out).",
)
@click.option("--skip-bad", is_flag=True, help="Skip bad lines, listing why, instead of storing nothing.")
@click.option("--chroma-url", default=None, help="Index on a chroma server (http://HOST:PORT), not embedded.")
@chroma_token_option
@clean_errors
def ingest(
    file: str, db: str, fmt: str | None, skip_bad: bool, chroma_url: str | None, chroma_token: str | None
) -> None:
    """Store the entities, events and facts of FILE (all of them, or nothing if a line is bad).

    Example: agentmem ingest story.jsonl --db mem
    """
    from agentmem.formats.ingest import ingest_file
    from agentmem.storage.vector_index import IndexUnavailableError

    with open_memory(db, chroma_url=chroma_url, chroma_token=chroma_token, auto_sync=False) as mem:
        with progress_bar("ingest", "ev") as bar:
            report = ingest_file(mem, file, format=fmt, skip_bad=skip_bad, progress=bar.update)
        try:
            with progress_bar("index", "op", total=mem.store.outbox_size()) as bar:
                s = mem.sync_index(progress=bar.update)
            indexed = f"indexed {s.applied} vectors in {s.seconds:.1f}s"
        except IndexUnavailableError as exc:
            indexed = f"not indexed yet: {exc}; run `agentmem index sync --db {db}` when it is back"
    click.echo(
        f"stored {report.entities} entities, {report.events} events, {report.relations} facts "
        f"({report.format}) in {db}; {indexed}"
    )
    for line in report.skipped:
        click.echo(f"skipped: {line}", err=True)


@cli.command()
@db_option
@click.option("--entity", "entities", multiple=True, help="Id, name or alias; repeat for several.")
@click.option(
    "--match",
    type=click.Choice(["any", "all"]),
    default="any",
    show_default=True,
    help="Events with any or all of the --entity values.",
)
@click.option("--from", "t_from", help="Start of the time range (seconds or ISO-8601).")
@click.option("--to", "t_to", help="End of the time range (seconds or ISO-8601).")
@click.option("--as-of", "as_of", help="Memory as it stood then; also prints each --entity's state.")
@click.option("--text", help="Free text (hybrid BM25 + dense).")
@click.option("--image", type=click.Path(), help="Image path; ranks events by media similarity.")
@click.option("--k", default=10, show_default=True, type=int, help="Number of hits.")
# A short metavar: the choices in the first column would narrow every option's help; the help lists them instead.
@click.option("--preset", default="hybrid", show_default=True, type=click.Choice(list(PRESETS)), metavar="PRESET",
              help=f"Ranking preset: {', '.join(PRESETS)}.")  # fmt: skip
@click.option("--ref-date", help="'Now' for phrases like 'last week' (default: latest event).")
@click.option("--include-archive", is_flag=True, help="Also search archived events.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (documented in the README).")
@clean_errors
def query(
    db: str,
    entities: tuple[str, ...],
    match: str,
    t_from: str | None,
    t_to: str | None,
    as_of: str | None,
    text: str | None,
    image: str | None,
    k: int,
    preset: str,
    ref_date: str | None,
    include_archive: bool,
    as_json: bool,
) -> None:
    """Find events by entity, time range, text and image.

    \b
    Each hit's score is the sum of its components (RRF votes, 1/(10 + rank)):
      bm25, dense         the event's own BM25 and MiniLM rank
      bm25_w1, bm25_w2    BM25 rank of its +-1 / +-2 neighbour window
      dense_w1, dense_w2  rank of the mean cosine of that window
      group               rank of its session/scene as a whole
      entity, time        the query names its entities / a date it falls in
      temporal            a "when" question and a dated text
      context             a quarter of its best neighbour's score
      image               media similarity; filter: filters only
    *_raw (in --json) are raw scores: BM25, cosine.

    Example: agentmem query --db mem --entity Mara --from 0 --to 60 --text "the lamp"
    """
    from agentmem.search.query import Query
    from agentmem.timeparse import format_time

    q = Query(
        text=text,
        image=image,
        k=k,
        preset=preset,
        include_archive=include_archive,
        entities=list(entities) if match == "any" else [],
        all_entities=list(entities) if match == "all" else [],
        t0=parse_time_opt(t_from, "--from"),
        t1=parse_time_opt(t_to, "--to"),
        as_of=parse_time_opt(as_of, "--as-of"),
        reference_time=parse_time_opt(ref_date, "--ref-date"),
    )
    require_db(db)
    with open_memory(db) as mem:
        hits = mem.query(q)
        states = {e: mem.state_at(e, q.as_of) for e in entities} if q.as_of is not None else {}
    if as_json:
        echo_json({"hits": [h.to_dict() for h in hits], **({"states": states} if q.as_of is not None else {})})
        return
    for e, st in states.items():
        click.echo(f"{e} as of {format_time(q.as_of or 0.0)}: " + (", ".join(f"{a}={v}" for a, v in st.items()) or "-"))
    if not hits:
        click.echo("no matching events")
    for i, h in enumerate(hits, 1):
        comps = " ".join(f"{c}={v:.3f}" for c, v in h.components.items() if not c.endswith("_raw"))
        click.echo(f"{i:>2}. [{format_time(h.t_start)}] {h.id}  score={h.score:.4f} ({comps})")
        click.echo(f"    {h.text[:200]}")
        click.echo(f"    entities={','.join(h.entities) or '-'} provenance={json.dumps(h.provenance)}")


@cli.command()
@db_option
@click.option("--kind", type=click.Choice(ENTITY_KINDS), help="Only this kind.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@clean_errors
def entities(db: str, kind: str | None, as_json: bool) -> None:
    """List entity slots.

    Example: agentmem entities --db mem --kind character
    """
    require_db(db)
    with open_memory(db) as mem:
        slots = mem.entities(kind)
    if as_json:
        echo_json([_slot_dict(s) for s in slots])
        return
    for s in slots:
        extra = f" (aliases: {', '.join(s.aliases)})" if s.aliases else ""
        click.echo(f"{s.id:<28} {s.kind:<10} {s.name}{extra}")


def _slot_dict(s) -> dict[str, Any]:
    return {
        "id": s.id,
        "kind": s.kind,
        "name": s.name,
        "aliases": s.aliases,
        "merged_ids": s.merged_ids,
        "attributes": [a.__dict__ for a in s.attributes],
        "media": [{"path": m.path, "t": m.t, "caption": m.caption} for m in s.media],
    }


@cli.command()
@click.argument("ref")
@db_option
@click.option("--as-of", "as_of", help="Show an entity's state at this time.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@clean_errors
def show(ref: str, db: str, as_of: str | None, as_json: bool) -> None:
    """Show one entity (by id, name or alias) or one event (by id).

    Example: agentmem show mara --db mem --as-of 45
    """
    from agentmem.errors import NotFoundError, UnknownEntityError
    from agentmem.timeparse import format_time

    require_db(db)
    with open_memory(db) as mem:
        try:
            slot = mem.entity(ref)
        except UnknownEntityError:
            try:
                ev = mem.event(ref)
            except NotFoundError:
                raise NotFoundError(f"no entity or event {ref!r}") from None
            d = {
                **ev.__dict__,
                "media": [m.__dict__ for m in ev.media],
                "camera": ev.camera.__dict__ if ev.camera else None,
            }
            if as_json:
                echo_json(d)
            else:
                for key, val in d.items():
                    click.echo(f"{key:>12}: {val}")
            return
    d = _slot_dict(slot)
    if as_of is not None:
        d["state"] = slot.state_at(parse_time_opt(as_of, "--as-of"))
    if as_json:
        echo_json(d)
        return
    click.echo(f"{slot.id} ({slot.kind}) {slot.name}")
    if slot.aliases:
        click.echo(f"  aliases: {', '.join(slot.aliases)}")
    if slot.merged_ids:
        click.echo(f"  merged ids: {', '.join(slot.merged_ids)}")
    for a in slot.attributes:
        until = format_time(a.t_to) if a.t_to is not None else "now"
        click.echo(f"  {a.key} = {a.value}  [{format_time(a.t_from)} .. {until})")
    if "state" in d:
        click.echo(f"  state as of {as_of}: {d['state']}")


@cli.command()
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@clean_errors
def stats(db: str, as_json: bool) -> None:
    """Counts, time span, embedders and index of a memory.

    Example: agentmem stats --db mem
    """
    require_db(db)
    with open_memory(db) as mem:
        st = mem.stats()
    if as_json:
        echo_json(st)
        return
    for key, val in st.items():
        click.echo(f"{key:>16}: {val}")


@cli.group()
def index() -> None:
    """Maintain the vector index (Chroma), which is derived from SQLite.

    Example: agentmem index reconcile --db mem
    """


@index.command("sync")
@db_option
@clean_errors
def index_sync(db: str) -> None:
    """Apply queued index work.

    Example: agentmem index sync --db mem
    """
    require_db(db)
    with open_memory(db) as mem:
        r = mem.sync_index()
    click.echo(f"applied {r.applied} index operations in {r.seconds:.1f}s; {r.remaining} left")


@index.command("reconcile")
@db_option
@clean_errors
def index_reconcile(db: str) -> None:
    """Compare the index with SQLite and repair any difference.

    Example: agentmem index reconcile --db mem
    """
    require_db(db)
    with open_memory(db) as mem:
        fixed = mem.reconcile_index()
    click.echo(" ".join(f"{k}={v}" for k, v in fixed.items()))


@index.command("rebuild")
@db_option
@clean_errors
def index_rebuild(db: str) -> None:
    """Rebuild the derived indexes (context windows and groups, then vectors) from SQLite.

    Example: agentmem index rebuild --db mem
    """
    require_db(db)
    with open_memory(db) as mem:
        r = mem.rebuild_index()
    click.echo(f"rebuilt: the context index, and {r.applied} vectors in {r.seconds:.1f}s")


@cli.command()
@click.argument("source")
@click.argument("target")
@db_option
@click.option("--reason", default="manual", help="Why (kept with the merge).")
@clean_errors
def merge(source: str, target: str, db: str, reason: str) -> None:
    """Merge entity SOURCE into TARGET, both stored entities (id, name or alias); undo with `agentmem split`.

    Example: agentmem merge keeper_2 mara --db mem
    """
    require_db(db)
    with open_memory(db) as mem:
        m = mem.merge(source, target, reason)
    click.echo(f"merge {m.id}: {m.source} -> {m.target}")


@cli.command()
@click.argument("merge_id", type=int)
@db_option
@clean_errors
def split(merge_id: int, db: str) -> None:
    """Undo merge MERGE_ID (see `agentmem merges`).

    Example: agentmem split 1 --db mem
    """
    require_db(db)
    with open_memory(db) as mem:
        m = mem.split(merge_id)
    click.echo(f"split {m.source} from {m.target}")


@cli.command()
@db_option
@clean_errors
def merges(db: str) -> None:
    """List recorded entity merges with their provenance.

    Example: agentmem merges --db mem
    """
    require_db(db)
    with open_memory(db) as mem:
        for m in mem.merges():
            state = f"undone {wall_time(m.undone_at)}" if m.undone_at else "active"
            click.echo(
                f"{m.id:>4}  {m.source} -> {m.target}  [{m.reason}, score {m.score:.3f}] "
                f"merged {wall_time(m.at)}, {state}"
            )


def wall_time(epoch: float) -> str:
    """A wall-clock time (when something was written, not story time) as ISO-8601 UTC.

    Examples
    --------
    >>> wall_time(1700000000.4)
    '2023-11-14T22:13:20Z'
    """
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@cli.command()
@click.option(
    "--out",
    default="agentmem-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder to write; if it exists, the demo writes into the next free NAME-2, NAME-3, ...",
)
@clean_errors
def demo(out: str) -> None:
    """Run the main job on the bundled example, in a new folder of its own.

    Writes OUT/memory (the memory of the bundled events), OUT/story (a story
    generated with memory in the loop) and OUT/world (a bundled walk through the
    world loop, with its side-by-side video). It never writes into an existing
    folder.

    Example: agentmem demo --out my-demo
    """
    from agentmem.cli.demo import run_demo

    run_demo(Path(out))


cli.add_command(bench)
bench.add_command(bench_planning)
cli.add_command(generate)
cli.add_command(plan_cmd)
cli.add_command(eval_group)
register_graph_commands(cli)
register_world_commands(cli)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
