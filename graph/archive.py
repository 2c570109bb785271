"""The archive tier: bringing back what compression archived (:func:`restore`), and the run history.

Compression journals every change in ``graph_archive`` (see :mod:`graph.compress`); restoring a run replays
its journal backwards in one transaction, so a SIGKILL leaves the run either restored or not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from graph import journal


@dataclass
class RestoreReport:
    """What :func:`restore` brought back."""

    runs: list[int] = field(default_factory=list)
    events: int = 0
    nodes: int = 0
    edges: int = 0
    facts_reopened: int = 0
    merges_undone: int = 0
    vectors: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        runs = ", ".join(map(str, self.runs)) or "-"
        return (
            f"restored runs {runs}: {self.events} events, {self.nodes} nodes, {self.edges} edges, "
            f"{self.facts_reopened} facts reopened, {self.merges_undone} merges undone, {self.vectors} vectors"
        )


def restore(
    store, *, run: int | None = None, events: Sequence[str] = (), t0: float | None = None, t1: float | None = None
) -> RestoreReport:
    """Bring archived items back.

    With ``events`` or a time range, only those archived events return to the
    active tier. Otherwise compression runs are undone from their journal,
    newest first: all of them, or ``run`` and every later one. Each run is
    undone in one transaction.
    """
    from agentmem.errors import NotFoundError

    rep = RestoreReport()
    if events or t0 is not None or t1 is not None:
        rids = [store.rid_of(e) for e in events]
        if t0 is not None or t1 is not None:
            lo, hi = (-np.inf if t0 is None else t0), (np.inf if t1 is None else t1)
            rids += journal.archived_overlapping(store, lo, hi)
        rids = sorted(set(rids))
        with store.transaction():
            rep.events = journal.unarchive_events(store, rids)
        return rep
    runs = journal.journalled_runs(store)
    if run is not None:
        if run not in runs and not journal.run_exists(store, run):
            raise NotFoundError(f"no compression run {run}; see `agentmem compress --history`")
        runs = [r for r in runs if r >= run]
    for r in runs:
        with store.transaction():
            for name, n in journal.undo_run(store, r).items():
                setattr(rep, name, getattr(rep, name) + n)
        rep.runs.append(r)
    return rep


def runs(store) -> list[dict]:
    """Compression runs, newest first, with their reports."""
    return journal.run_history(store)
