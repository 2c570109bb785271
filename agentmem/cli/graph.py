"""``agentmem graph ...``, ``agentmem compress`` and ``agentmem restore``.

Importing this module loads click only; the graph code is imported when a command runs.
"""

from __future__ import annotations

import click

from agentmem.cli.common import clean_errors, db_option, echo_json, parse_time_opt, require_db


def _open(db: str, *, embedder: bool = False):
    """The memory at ``db``; models load only for commands that embed text (graph search)."""
    from graph.memory import GraphMemory

    require_db(db)
    kwargs = {} if embedder else {"text_embedder": None, "image_embedder": None}
    return GraphMemory.open(db, auto_sync=False, **kwargs)


@click.group("graph")
def graph_group() -> None:
    """The relation graph: counts, export, neighbours, paths, timelines, search.

    Example: agentmem graph stats --db mem
    """


@graph_group.command("stats")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@clean_errors
def graph_stats(db: str, as_json: bool) -> None:
    """Nodes and edges by type, active and archived, and the compression runs.

    Example: agentmem graph stats --db mem
    """
    from graph.explore import graph_stats as compute

    with _open(db) as gm:
        gm.update()
        st = compute(gm.store)
    if as_json:
        echo_json(st)
        return
    for section in ("nodes", "edges"):
        click.echo(f"{section}:")
        for kind, c in st[section].items():
            click.echo(f"  {kind:<16} active {c['active']:>9}  archived {c['archived']:>9}")
    click.echo(f"compression runs: {st['runs']} (last: {st['last_run'] or '-'})")


@graph_group.command("export")
@db_option
@click.option(
    "--out",
    "out",
    default="graph.graphml",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Output file: .graphml (GraphML) or .json (node-link JSON).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["graphml", "json"]),
    default=None,
    help="Format (default: from the file name).",
)
@click.option("--include-archive", is_flag=True, help="Also archived events, nodes and edges.")
@click.option("--no-events", is_flag=True, help="Leave event nodes out (entities, episodes, arcs, communities).")
@click.option("--png", type=click.Path(dir_okay=False), default=None, help="Also draw the entity graph here.")
@clean_errors
def graph_export(db: str, out: str, fmt: str | None, include_archive: bool, no_events: bool, png: str | None) -> None:
    """Write the graph to GraphML or node-link JSON (and optionally a PNG picture).

    Example: agentmem graph export --db mem --out story.graphml --png story.png
    """
    from graph.build import load_graph
    from graph.persist import export_graph

    with _open(db) as gm:
        gm.update()
        G = load_graph(gm.store, include_archive=include_archive, events=not no_events)
    path = export_graph(G, out, fmt)
    click.echo(f"wrote {path}: {G.number_of_nodes()} nodes, {G.number_of_edges()} edges")
    if png:
        from graph.plots import plot_graph

        click.echo(f"wrote {plot_graph(G, png)}")


@graph_group.command("neighbors")
@click.argument("entity")
@db_option
@click.option("--as-of", "as_of", help="Only facts valid then (seconds or ISO-8601).")
@click.option("--predicate", help="Only this predicate (e.g. holds, co_participates).")
@click.option("--include-archive", is_flag=True, help="Also pruned edges.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@clean_errors
def graph_neighbors(
    entity: str, db: str, as_of: str | None, predicate: str | None, include_archive: bool, as_json: bool
) -> None:
    """Entities related to ENTITY (id, name or alias), strongest first.

    Example: agentmem graph neighbors mara --db mem --as-of 50
    """
    from graph.explore import neighbors

    with _open(db) as gm:
        gm.update()
        ns = neighbors(
            gm.mem, entity, as_of=parse_time_opt(as_of, "--as-of"), predicate=predicate, include_archive=include_archive
        )
    if as_json:
        echo_json([n.to_dict() for n in ns])
        return
    if not ns:
        click.echo("no neighbours")
    for n in ns:
        until = "now" if n.t_to is None else f"{n.t_to:g}"
        arrow = "->" if n.direction == "out" else "<-"
        click.echo(
            f"{arrow} {n.entity:<24} {n.predicate:<16} weight {n.weight:<6g} [{n.t_from:g} .. {until})  "
            f"evidence {','.join(n.evidence[-5:])}"
        )


@graph_group.command("path")
@click.argument("a")
@click.argument("b")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@clean_errors
def graph_path(a: str, b: str, db: str, as_json: bool) -> None:
    """The shortest path from entity A to entity B over relation edges (stronger edges are shorter).

    Example: agentmem graph path lamp harbor --db mem
    """
    from graph.explore import path

    with _open(db) as gm:
        gm.update()
        steps = path(gm.mem, a, b)
    if as_json:
        echo_json([s.__dict__ for s in steps])
        return
    for s in steps:
        click.echo(f"{s.src} --{s.predicate} ({s.weight:g})--> {s.dst}   evidence {','.join(s.evidence[-3:])}")


@graph_group.command("timeline")
@click.argument("entity")
@db_option
@click.option("--from", "t_from", help="Start (seconds or ISO-8601).")
@click.option("--to", "t_to", help="End (seconds or ISO-8601).")
@click.option("--include-archive", is_flag=True, help="Also archived events.")
@click.option(
    "--png", type=click.Path(dir_okay=False), default=None, help="Picture to write (default: timeline-ENTITY.png)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@clean_errors
def graph_timeline(
    entity: str, db: str, t_from: str | None, t_to: str | None, include_archive: bool, png: str | None, as_json: bool
) -> None:
    """ENTITY's events in story order with their episodes, facts and attributes; also writes a PNG.

    Example: agentmem graph timeline mara --db mem --png mara.png
    """
    from agentmem.outdir import safe_name
    from graph.explore import timeline
    from graph.plots import plot_timeline

    with _open(db) as gm:
        gm.update()
        tl = timeline(
            gm.mem,
            entity,
            t0=parse_time_opt(t_from, "--from"),
            t1=parse_time_opt(t_to, "--to"),
            include_archive=include_archive,
        )
    out = plot_timeline(tl, png or f"timeline-{safe_name(tl.entity)}.png")  # an entity id is data, not a path
    if as_json:
        echo_json({**tl.to_dict(), "png": str(out)})
        return
    click.echo(f"{tl.name} ({tl.entity}): {len(tl.events)} events")
    for e in tl.events:
        flag = " [archived]" if e.archived else ""
        click.echo(f"  [{e.t_start:>10g}] {e.id:<14} {e.episode or '-':<12} {e.text[:90]}{flag}")
    for f in tl.facts:
        until = "now" if f["t_to"] is None else f"{f['t_to']:g}"
        click.echo(f"  fact: {f['subject']} {f['predicate']} {f['object']} [{f['t_from']:g} .. {until})")
    click.echo(f"wrote {out}")


@graph_group.command("search")
@db_option
@click.option("--text", required=True, help="Free text.")
@click.option("--entity", "entities", multiple=True, help="Id, name or alias; events with any of them.")
@click.option("--from", "t_from", help="Start of the time range.")
@click.option("--to", "t_to", help="End of the time range.")
@click.option("--k", default=10, show_default=True, type=int, help="Number of hits.")
@click.option("--include-archive", is_flag=True, help="Also archived events and summaries.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the `agentmem query --json` hit keys).")
@clean_errors
def graph_search(
    db: str,
    text: str,
    entities: tuple[str, ...],
    t_from: str | None,
    t_to: str | None,
    k: int,
    include_archive: bool,
    as_json: bool,
) -> None:
    """Coarse-to-fine search (summaries, then their events) with graph expansion, fused with the core ranking.

    Example: agentmem graph search --db mem --text "who rescued the girl" --k 5
    """
    from agentmem.search.query import Query

    q = Query(
        text=text,
        entities=list(entities),
        t0=parse_time_opt(t_from, "--from"),
        t1=parse_time_opt(t_to, "--to"),
        k=k,
        include_archive=include_archive,
    )
    with _open(db, embedder=True) as gm:
        hits = gm.search(q)
    if as_json:
        echo_json({"hits": [h.to_dict() for h in hits]})
        return
    for i, h in enumerate(hits, 1):
        comps = " ".join(f"{c}={v:.4f}" for c, v in h.components.items())
        click.echo(f"{i:>2}. [{h.t_start:g}] {h.kind} {h.id}  score={h.score:.4f} ({comps})")
        click.echo(f"    {h.text[:200]}")


@graph_group.command("rebuild")
@db_option
@clean_errors
def graph_rebuild(db: str) -> None:
    """Re-derive the graph tables from events, entities and facts (refused while anything is archived).

    Example: agentmem graph rebuild --db mem
    """
    from graph.build import rebuild

    with _open(db) as gm:
        r = rebuild(gm.store, gm.config)
    click.echo(
        f"rebuilt: {r.events} events, {r.episodes} episodes, {r.arcs} arcs, {r.edges} edges, "
        f"{r.facts} facts in {r.seconds:.1f}s"
    )


@click.command("compress")
@db_option
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing.")
@click.option("--keep-events", type=int, default=None, help="Newest raw events kept active (default 5000).")
@click.option(
    "--communities/--no-communities",
    default=None,
    help="Recompute entity communities now (default: every 100,000 events).",
)
@click.option("--history", is_flag=True, help="List past runs instead.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@clean_errors
def compress_cmd(
    db: str, dry_run: bool, keep_events: int | None, communities: bool | None, history: bool, as_json: bool
) -> None:
    """Consolidate the memory: close contradicted facts, prune weak edges, merge duplicates, cap
    embedding sets, roll old events up into their episodes; report what changed. Nothing is deleted.

    Example: agentmem compress --db mem --dry-run
    """
    from dataclasses import replace

    from graph.archive import runs

    with _open(db) as gm:
        if history:
            hist = runs(gm.store)
            if as_json:
                echo_json(hist)
            for r in [] if as_json else hist:
                state = "restored" if r["restored_at"] else ("finished" if r["finished_at"] else "interrupted")
                click.echo(f"run {r['run']:>4}  {state:<11} steps {','.join(r['steps'])}")
            return
        if keep_events is not None:
            gm.policy = replace(gm.policy, keep_events=keep_events)
        rep = gm.compress(dry_run=dry_run, communities=communities)
    if as_json:
        echo_json(rep.to_dict())
    else:
        click.echo(rep.format())


@click.command("restore")
@db_option
@click.option("--run", "run", type=int, default=None, help="Undo this compression run and every later one.")
@click.option("--event", "events", multiple=True, help="Bring back only this archived event (repeatable).")
@click.option("--from", "t_from", help="Bring back archived events from this time ...")
@click.option("--to", "t_to", help="... to this time.")
@clean_errors
def restore_cmd(db: str, run: int | None, events: tuple[str, ...], t_from: str | None, t_to: str | None) -> None:
    """Bring archived items back: undo compression runs (all by default), or return chosen events.

    Example: agentmem restore --db mem --run 3
    """
    with _open(db) as gm:
        rep = gm.restore(
            run=run, events=list(events), t0=parse_time_opt(t_from, "--from"), t1=parse_time_opt(t_to, "--to")
        )
    if events or t_from or t_to:
        click.echo(f"restored {rep.events} archived events to the active tier")
    else:
        click.echo(rep.format())


def register(cli: click.Group) -> None:
    """Add ``graph``, ``compress`` and ``restore`` to the ``agentmem`` command group."""
    cli.add_command(graph_group)
    cli.add_command(compress_cmd)
    cli.add_command(restore_cmd)


__all__ = ["compress_cmd", "graph_group", "register", "restore_cmd"]
