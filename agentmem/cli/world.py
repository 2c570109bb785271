"""``agentmem world``: posed frames in, context frames and memory renders out (the spatial memory)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from agentmem.cli.common import (
    clean_errors,
    db_option,
    echo_json,
    progress_bar,
    require_world_db,
    world_backend_options,
    world_generator,
)
from agentmem.interactive.loop import MODES
from agentmem.spatial.policies import POLICIES


@click.group("world")
def world_group() -> None:
    """Spatial memory: posed RGB-D frames, a voxel map, context frames chosen by view, renders.

    Example: agentmem world ingest scene/transforms.json --db mem
    """


@world_group.command("ingest")
@click.argument("transforms", type=click.Path(dir_okay=False))
@db_option
@click.option("--allow-outside", is_flag=True, help="Accept paths outside the dataset folder.")
@click.option("--copy", is_flag=True, help="Copy images, depth and masks into the memory (else kept by path).")
@clean_errors
def world_ingest(transforms: str, db: str, allow_outside: bool, copy: bool) -> None:
    """Store the frames of a nerfstudio transforms.json (validated in full first) and map them.

    Example: agentmem world ingest scene/transforms.json --db mem --copy
    """
    from agentmem.formats.transforms import load_transforms, read_frame
    from agentmem.spatial.world import SpatialMemory

    posed = load_transforms(transforms, allow_outside=allow_outside)
    frames = []
    with progress_bar("reading", "frame", len(posed)) as bar:
        for p in posed:
            frames.append(read_frame(p, f"{transforms}: frame {p.id!r}"))
            bar.update(1)
    paths = [(str(p.rgb_path), None if p.depth_path is None else str(p.depth_path), p.depth_scale,
              None if p.mask_path is None else str(p.mask_path)) for p in posed]  # fmt: skip
    t0 = time.perf_counter()
    with SpatialMemory(db) as sm:
        sm.add(frames, paths=paths, copy=copy)
        st = sm.stats()
    rate = len(frames) / max(time.perf_counter() - t0, 1e-9)
    click.echo(f"stored {len(frames)} frames ({rate:,.0f} frames/s with the map); map voxels {st['map_voxels']:,}")


@world_group.command("retrieve")
@db_option
@click.option("--views", "views", required=True, type=click.Path(dir_okay=False), help="Views (transforms layout).")
@click.option("--k", "budget", default=8, show_default=True, type=click.IntRange(1, 64), help="Frames per view.")
@click.option("--policy", default=None, type=click.Choice(list(POLICIES)),
              help="Context-frame policy (default: map when the frames have depth, else fov).")  # fmt: skip
@click.option("--policy-param", "params", multiple=True, metavar="NAME=VALUE",
              help="Set one of the policy's parameters (repeatable), e.g. suppress=2.0 or far=80; "
                   "docs/spatial.md lists them.")  # fmt: skip
@click.option("--include-archive", is_flag=True, help="Also consider archived frames.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@clean_errors
def world_retrieve(db: str, views: str, budget: int, policy: str | None, params: tuple[str, ...],
                   include_archive: bool, as_json: bool) -> None:  # fmt: skip
    """Context frames for each view: at most K, none later than the view's time, each with score and reason.

    Example: agentmem world retrieve --db mem --views views.json --k 8 --policy pose --policy-param suppress=2.0
    """
    from agentmem.formats.transforms import load_views
    from agentmem.spatial.policies import default_policy, policy_named
    from agentmem.spatial.world import SpatialMemory

    config = policy_named(policy).configure(params) if policy is not None else None  # bad input fails first
    specs = load_views(views)
    require_world_db(db)
    results: list[dict[str, Any]] = []
    with SpatialMemory(db) as sm:
        name = policy or default_policy(sm.frames)
        config = config or policy_named(name).configure(params)
        for v in specs:
            t0 = time.perf_counter()
            got = sm.retrieve(v.c2w, v.k, v.t, budget=budget, policy=name, include_archive=include_archive,
                              config=config)  # fmt: skip
            ms = (time.perf_counter() - t0) * 1000
            results.append({"view": v.file_path, "latency_ms": round(ms, 3), "frames": [g.__dict__ for g in got]})
    if as_json:
        echo_json({"policy": name, "results": results})
        return
    for r in results:
        click.echo(f"{r['view']} ({r['latency_ms']:.1f} ms, {name}):")
        for f in r["frames"]:
            click.echo(f"   {f['file_path']}  t={f['time']:g}  score={f['score']:.3f}  {f['reason']}")


@world_group.command("render")
@db_option
@click.option("--views", "views", required=True, type=click.Path(dir_okay=False), help="Views (transforms layout).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="A new folder for the renders.")
@click.option("--k", "budget", default=4, show_default=True, type=click.IntRange(1, 64), help="Frames warped per view.")
@click.option("--force", is_flag=True, help="Replace its earlier run in OUT, even unfinished (your files are kept).")
@clean_errors
def world_render(db: str, views: str, out: str, budget: int, force: bool) -> None:
    """Memory rendered into each view: OUT/<stem>/rgb.png, depth.png (uint16 mm, 0 = hole), mask.png (255 = covered).

    <stem> is the file name of the view's file_path without its suffix; a view whose stem is taken by an earlier
    view (a/shot.png, b/shot.png) or is not a safe folder name (.., hidden, too long) gets a folder of its own
    (shot-2, _..), printed here and kept in OUT/.agentmem-output.json under "views".

    Example: agentmem world render --db mem --views views.json --out renders
    """
    import numpy as np
    from PIL import Image

    from agentmem.formats.transforms import load_views
    from agentmem.outdir import claim, finish, inside, safe_name, unique_names
    from agentmem.spatial.world import SpatialMemory

    specs = load_views(views)
    require_world_db(db)
    stems = [Path(v.file_path).stem for v in specs]
    names = unique_names(safe_name(s) for s in stems)
    folder = claim(out, command="world render", force=force, writes=names)
    with SpatialMemory(db) as sm:
        for v, name in zip(specs, names):
            r = sm.render(v.c2w, v.k, v.t, budget=budget)
            d = inside(folder, name)
            d.mkdir()  # a new folder of ours (never exist_ok): the three fixed names below stay inside it
            Image.fromarray(r.rgb).save(d / "rgb.png")
            Image.fromarray(np.clip(np.round(r.depth * 1000), 0, 65535).astype(np.uint16)).save(d / "depth.png")
            Image.fromarray((r.mask * 255).astype(np.uint8)).save(d / "mask.png")
    finish(folder, views={name: v.file_path for v, name in zip(specs, names)})
    for v, stem, name in zip(specs, stems, names):
        if name != stem:
            why = "taken by an earlier view" if safe_name(stem) == stem else "not a safe folder name"
            click.echo(f"view {v.file_path!r}: written to {name}/ ({stem!r} is {why})")
    click.echo(f"wrote {len(specs)} renders to {folder}")


@world_group.command("stats")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@clean_errors
def world_stats(db: str, as_json: bool) -> None:
    """Frames, frames with depth, archived frames and map size.

    Example: agentmem world stats --db mem
    """
    from agentmem.spatial.world import SpatialMemory

    require_world_db(db)
    with SpatialMemory(db) as sm:
        st = sm.stats()
    if as_json:
        echo_json(st)
        return
    for key, value in st.items():
        click.echo(f"{key:<18} {value}")


@world_group.command("export")
@db_option
@click.option("--ply", "ply", required=True, type=click.Path(dir_okay=False), help="A new .ply file.")
@clean_errors
def world_export(db: str, ply: str) -> None:
    """The static map as a coloured point cloud (ASCII PLY, one point per voxel centre).

    Example: agentmem world export --db mem --ply map.ply
    """
    import os

    from agentmem.errors import BadInputError
    from agentmem.spatial.scenemap import write_ply
    from agentmem.spatial.world import SpatialMemory

    if os.path.lexists(ply):  # lexists: a dangling symlink counts too, it would make the file elsewhere
        raise BadInputError(f"--ply: {ply} already exists; choose a new file")
    if not Path(ply).parent.is_dir():
        raise BadInputError(f"--ply: {Path(ply).parent} is not a folder; create it first")
    require_world_db(db)
    with SpatialMemory(db) as sm:
        n = write_ply(sm.frames.map, ply, sm.origin)
    click.echo(f"wrote {n:,} points to {ply}")


@world_group.command("compress")
@db_option
@click.option("--dry-run", is_flag=True, help="Report what would be archived; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@clean_errors
def world_compress(db: str, dry_run: bool, as_json: bool) -> None:
    """Archive frames whose every map voxel stays seen at least as well by 2 active frames (keyframes stay).

    Nothing is deleted: archived frames keep their rows and pixels; retrieve them with --include-archive, or make
    them active again with `agentmem world restore`.

    Example: agentmem world compress --db mem --dry-run
    """
    from agentmem.spatial.world import SpatialMemory

    require_world_db(db)
    with SpatialMemory(db) as sm:
        plan = sm.compress(dry_run=dry_run)
        total = len(sm.frames)
    report = {"frames": total, "archived_now": len(plan.archive), "active_after": plan.active_after,
              "keyframes": len(plan.keyframes), "dry_run": dry_run}  # fmt: skip
    if as_json:
        echo_json(report)
        return
    verb = "would archive" if dry_run else "archived"
    click.echo(f"{verb} {len(plan.archive):,} of {total:,} frames; {plan.active_after:,} stay active "
               f"({len(plan.keyframes):,} keyframes)")  # fmt: skip


@world_group.command("restore")
@db_option
@clean_errors
def world_restore(db: str) -> None:
    """Make every archived frame active again (their rows come back exactly as they were).

    Example: agentmem world restore --db mem
    """
    from agentmem.spatial.world import SpatialMemory

    require_world_db(db)
    with SpatialMemory(db) as sm:
        n = sm.restore()
    click.echo(f"restored {n:,} frames")


@world_group.command("track")
@click.argument("entity")
@db_option
@click.option("--from", "t0", type=float, default=None, help="Earliest story time (seconds).")
@click.option("--to", "t1", type=float, default=None, help="Latest story time (seconds).")
@click.option("--at", "at", type=float, default=None, help="Only where the entity was as of this time.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@clean_errors
def world_track(entity: str, db: str, t0: float | None, t1: float | None, at: float | None, as_json: bool) -> None:
    """An entity's 3D positions over time (ENTITY: an id, name or alias), from the frames whose instance maps show it.

    Example: agentmem world track "the cart" --db mem --from 0 --to 60
    """
    import math

    from agentmem.spatial.world import SpatialMemory

    require_world_db(db)
    with SpatialMemory(db) as sm:
        entity = sm.entity_id(entity, "track")
        if at is not None:
            one = sm.position_at(entity, at)
            samples = [] if one is None else [one]
        else:
            samples = sm.track(entity, -math.inf if t0 is None else t0, math.inf if t1 is None else t1)
    if as_json:
        rows = [{"t": s.t, "position": list(s.position), "pixels": s.pixels, "frame": s.frame} for s in samples]
        echo_json({"entity": entity, "samples": rows})
        return
    if not samples:
        click.echo(f"{entity}: not seen" + ("" if at is None else f" by t={at:g}"))
    for s in samples:
        x, y, z = s.position
        click.echo(f"t={s.t:g}  ({x:.2f}, {y:.2f}, {z:.2f})  {s.pixels} px  {s.frame}")


@world_group.command("frames")
@db_option
@click.option("--entity", default=None, help="Only frames whose instance maps show this entity (id, name or alias).")
@click.option("--from", "t0", type=float, default=None, help="Earliest story time (seconds).")
@click.option("--to", "t1", type=float, default=None, help="Latest story time (seconds).")
@click.option("--include-archive", is_flag=True, help="Also list archived frames.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@clean_errors
def world_frames(db: str, entity: str | None, t0: float | None, t1: float | None, include_archive: bool,
                 as_json: bool) -> None:  # fmt: skip
    """Stored frames by entity and time range, by time (story keyframes name their event in `source`).

    Example: agentmem world frames --db mem --entity cart --from 0 --to 20
    """
    import math

    from agentmem.spatial.world import SpatialMemory

    require_world_db(db)
    with SpatialMemory(db) as sm:
        found = sm.find(entity=entity, t0=-math.inf if t0 is None else t0, t1=math.inf if t1 is None else t1,
                        include_archive=include_archive)  # fmt: skip
    if as_json:
        echo_json({"frames": [{"id": i, "time": t, "source": src} for i, t, src in found]})
        return
    for i, t, src in found:
        click.echo(f"t={t:g}  {i}" + (f"  {src}" if src else ""))
    if not found:
        click.echo("no frames")


@world_group.command("run")
@click.argument("walk")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="A new folder for the outputs.")
@click.option("--db", "db", default=None, help="Memory directory (default: OUT/memory, new).")
@click.option("--mode", type=click.Choice(MODES), default="memory", show_default=True,
              help="Conditioning: spatial memory, the last 8 frames only, or none.")  # fmt: skip
@world_backend_options
@click.option("--force", is_flag=True, help="Replace its earlier run in OUT, even unfinished (your files are kept).")
@clean_errors
def world_run(walk: str, out: str, db: str | None, mode: str, backend: str, model: str | None, force: bool) -> None:
    """Drive a walk (YAML; a path or a bundled name) through the world loop on a world back end (--backend).

    Writes OUT/video.mp4, OUT/side_by_side.mp4 (generated | memory render | covered | context frames),
    OUT/memory.png (memory size and step latency), OUT/plans.jsonl and OUT/report.html. The default back end,
    preview, is a deterministic CPU preview, not a learned model: it keeps memory's render where memory covers
    the view and invents procedurally in the holes. The others are diffusers pipelines: they need their weights
    (--model) and return no depth.

    Example: agentmem world run street_return --out walk-run
    """
    from agentmem.errors import BadInputError
    from agentmem.interactive.produce import WALK_OUTPUTS, check_walk, run_walk
    from agentmem.interactive.walks import bundled_walks, load_walk
    from agentmem.outdir import claim, finish

    bundled = bundled_walks()
    path = bundled[walk] if walk in bundled and not Path(walk).exists() else Path(walk)
    if not path.exists():
        raise BadInputError(f"{walk}: no such walk file (bundled walks: {', '.join(bundled)})")
    # Everything is checked before the folder is claimed: a bad walk or memory leaves nothing behind.
    parsed = load_walk(path)
    check_walk(parsed, db, str(path))
    generator = world_generator(backend, model)  # weights are found (or not) before the folder is claimed
    folder = claim(out, command="world run", force=force, writes=[*WALK_OUTPUTS, *([] if db else ["memory"])])
    with progress_bar("steps", "step") as bar:

        def tick(done: int, total: int) -> None:
            bar.total = total
            bar.update(1)

        res = run_walk(parsed, db or folder / "memory", folder, generator=generator, mode=mode,
                       progress=tick)  # fmt: skip
    finish(folder)
    click.echo(f"{res.steps} steps, {res.frames} frames; invented share {res.invented_share:.1%}")
    click.echo(f"side by side: {Path(res.side_by_side.path).resolve()}")
    click.echo(f"report: {res.report.resolve()}")


@world_group.command("relink")
@click.argument("old_prefix")
@click.argument("new_prefix")
@db_option
@click.option("--dry-run", is_flag=True, help="Check and count; write nothing.")
@clean_errors
def world_relink(old_prefix: str, new_prefix: str, db: str, dry_run: bool) -> None:
    """Re-point the files a memory references after they moved: every stored absolute path under OLD_PREFIX
    (whole path components) moves under NEW_PREFIX, frames and media alike.

    Every new file must exist: one missing one is named and nothing changes. Files inside the memory folder are
    stored relative to it and move with it; they never need this.

    Example: agentmem world relink /mnt/old/scene /data/scene --db mem
    """
    from agentmem.storage.paths import relink
    from agentmem.storage.store import Store

    require_world_db(db)
    store = Store(db)  # not SpatialMemory: opening that may need the very files that moved to catch its map up
    try:
        plan = relink(store, old_prefix, new_prefix, dry_run=dry_run)
    finally:
        store.close()
    verb = "would re-point" if dry_run else "re-pointed"
    click.echo(f"{verb} {plan.paths:,} paths ({len(plan.frames):,} frames, {len(plan.media):,} media items)")


def register(cli: click.Group) -> None:
    cli.add_command(world_group)
