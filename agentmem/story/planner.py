"""The planner: a :class:`~generators.conditioning.ShotPlan` for each shot, built from memory as of that shot.

It never uses the future and never uses the shot itself: every frame and
event it reads starts strictly before the shot's ``t``. What the shot itself
declares (who is present, its action and camera, and its ``changes`` and
``facts``, which the director stores at ``t`` before planning) is the shot's
own state, not memory of the future.

A plan is built in numbered steps (see :meth:`Planner.__call__`): check the inputs; condition each present
entity (appearance as of ``t``, reference images and embeddings, a stable seed); condition the location with
reference frames of earlier shots there (offered by :func:`~agentmem.story.frames.reference_pool`, from the
spatial memory near the shot's pose when it has one; chosen by :mod:`agentmem.story.views`); decide continuity;
read the short-term window and retrieve long-term events; read the facts valid at ``t``; compose the prompt and
negative prompt; and record a memory trace.

:func:`plan_without_memory` is the memory-less baseline of the consistency
evaluation: it sees the shot's text only.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agentmem.errors import BadInputError
from agentmem.facts import fact_ends
from agentmem.model import EntitySlot, Relation
from agentmem.search.fusion import SearchPreset, preset_named
from agentmem.story.format import Shot
from agentmem.story.frames import FrameRow, frame_media, recent_events, reference_pool, shot_frames, shot_of
from agentmem.story.views import ViewCandidate, select_views
from generators.conditioning import (
    CameraConditioning,
    DynamicConditioning,
    EntityConditioning,
    FrameRef,
    LocationConditioning,
    ShotPlan,
    StaticConditioning,
    TraceItem,
)
from generators.motion import motion_for

if TYPE_CHECKING:
    from agentmem.spatial.world import SpatialMemory

# Long-term retrieval: dense cosine over the shot's entities' earlier events, read shallow. The entity filter has
# already narrowed the candidates, and the deep lexical rankings of "hybrid" cost ~100 ms a query at 100k events.
PLANNER_PRESET = SearchPreset(
    "planner",
    w_bm25=0,
    w_windows=0,
    w_group=0,
    w_entity=0,
    w_time=0,
    w_temporal=0,
    w_context=0,
    depth=16,
    expand=0,
    description="dense over entity-filtered candidates, shallow (the planner's default)",
)
NEGATIVE_BASE = (
    "blurry, low quality, deformed, extra limbs, duplicate characters, inconsistent character "
    "appearance, changing clothes between shots, flicker, text, watermark"
)


@dataclass(frozen=True)
class PlannerConfig:
    """Knobs of the planner.

    Attributes
    ----------
    max_reference_frames : int
        Location frames to condition on (the view-selection ``k``).
    recent_shots : int
        Size of the short-term window, in earlier shots (or events).
    retrieved_events : int
        Long-term events retrieved by text and entities.
    retrieval_preset : str or SearchPreset
        Search preset for long-term retrieval (a name of :data:`agentmem.search.fusion.PRESETS` or a preset).
        :data:`PLANNER_PRESET` by default: dense only, shallow. Memories without a text embedder use
        ``"lexical"``.
    """

    max_reference_frames: int = 4
    recent_shots: int = 3
    retrieved_events: int = 3
    retrieval_preset: str | SearchPreset = PLANNER_PRESET


@dataclass
class _Trace:
    items: list[TraceItem] = field(default_factory=list)

    def add(self, id: str, kind: str, score: float, reason: str) -> None:
        self.items.append(TraceItem(id=id, kind=kind, score=round(float(score), 4), reason=reason))


def stable_seed(*parts: object) -> int:
    """A seed from a SHA-256 of ``parts``: the same in every process (unlike ``hash``).

    >>> stable_seed("mara") == stable_seed("mara"), stable_seed("mara") != stable_seed("tomas")
    (True, True)
    """
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def continues(previous: Shot | None, shot: Shot) -> bool:
    """Whether ``shot`` continues ``previous`` in place and time (same known location, no gap)."""
    return (
        previous is not None
        and previous.location is not None
        and previous.location == shot.location
        and math.isclose(previous.end, shot.t, rel_tol=0, abs_tol=1e-6)
    )


class Planner:
    """Builds a :class:`ShotPlan` for a shot from a :class:`~agentmem.memory.Memory`.

    Parameters
    ----------
    mem : Memory
        The memory, holding the story's entities and the frames of earlier shots.
    config : PlannerConfig
        Knobs; see :class:`PlannerConfig`.
    seed : int
        Story seed; mixed into every per-entity and per-shot seed.
    frame_store : callable, optional
        Gives the spatial memory (or None), where a shot with a camera pose finds its location's views near it.
    """

    def __init__(
        self, mem, config: PlannerConfig | None = None, *, seed: int = 0,
        frame_store: Callable[[], SpatialMemory | None] | None = None,
    ):  # fmt: skip
        self.mem = mem
        self.config = config or PlannerConfig()
        self.seed = seed
        self.frame_store = frame_store or (lambda: None)

    def __call__(self, shot: Shot, previous: Shot | None = None) -> ShotPlan:
        """Plan ``shot``; ``previous`` is the shot before it in story order (for continuity)."""
        trace = _Trace()
        # 1. Inputs: the entities must be in memory; nothing at or after t is read below.
        slots = self.check_inputs(shot)
        # The action's embedding, the costliest read, is computed on the memory's worker thread meanwhile.
        action_vector = self.embed_action(shot)
        # 2. Static: each present entity as of t.
        entities = [self.entity_conditioning(slots[e], shot.t, trace) for e in shot.present]
        # 3. Static: the location and reference frames of earlier shots there.
        location = None
        if shot.location:
            frames, pool = reference_pool(self.mem, self.frame_store(), shot)
            location = self.location_conditioning(slots[shot.location], shot, frames, pool, trace)
        # 4. Dynamic: continuity with the previous shot.
        continue_from = self.continuity(shot, previous, trace)
        # 5. Dynamic: short-term window and long-term retrieval.
        recent, seen = self.recent_window(shot, trace)
        if continue_from is not None:
            seen.add(continue_from.shot_id)
        retrieved = self.retrieve(shot, seen, trace, action_vector)
        # 6. Facts valid at t about the entities of the shot.
        facts = self.facts(shot, slots, trace)
        # 7. Prompt and negative prompt.
        prompt = compose_prompt(shot, entities, location, facts, continue_from is not None)
        negative = compose_negative(shot, slots)
        return ShotPlan(
            shot_id=shot.id,
            t=shot.t,
            duration=shot.duration,
            prompt=prompt,
            negative_prompt=negative,
            static=StaticConditioning(entities=entities, location=location),
            dynamic=DynamicConditioning(
                action=shot.action,
                motion=shot.motion or motion_for("", shot.action).kind,
                camera=CameraConditioning(move=shot.camera.move, pose=shot.camera.pose, fov=shot.camera.fov),
                continue_from=continue_from,
                recent=recent,
                retrieved=retrieved,
            ),
            memory_trace=trace.items,
            seed=stable_seed(self.seed, "shot", shot.id),
        )

    # ------------------------------------------------------------------ steps

    def check_inputs(self, shot: Shot) -> dict[str, EntitySlot]:
        """Entity slots of everything the shot names (raises UnknownEntityError for one not in memory)."""
        ids = [*shot.present, *([shot.location] if shot.location else [])]
        return {e: self.mem.entity(e) for e in ids}

    def entity_conditioning(self, slot: EntitySlot, t: float, trace: _Trace) -> EntityConditioning:
        app = _valid(slot, "appearance", t)
        vecs = self.mem.store.entity_vectors([slot.id], "image")
        emb = [round(float(x), 4) for x in vecs[0][1]] if vecs else None
        refs = [m.path for m in slot.media if m.path]
        since = "declared" if app is None or app.source == "declared" else f"changed at t={app.t_from:g}"
        trace.add(
            slot.id,
            "entity",
            1.0,
            f"present in the shot; appearance {since}" + (f"; {len(refs)} reference image(s)" if refs else ""),
        )
        return EntityConditioning(
            id=slot.id,
            name=slot.name,
            kind=slot.kind,
            appearance=app.value if app else "",
            reference_images=refs,
            seed=stable_seed(self.seed, "entity", slot.id),
            embedding=emb,
        )

    def location_conditioning(
        self, slot: EntitySlot, shot: Shot, frames: Sequence[FrameRow], pool: str, trace: _Trace
    ) -> LocationConditioning:
        app = _valid(slot, "appearance", shot.t)
        cands = self.reference_candidates(frames)
        picks = select_views(shot.camera.pose, shot.camera.fov, cands, shot.t, k=self.config.max_reference_frames)
        trace.add(slot.id, "entity", 1.0, f"location of the shot; references chosen among {pool}")
        for p in picks:
            trace.add(p.candidate.key, "frame", p.score, f"location reference from {p.candidate.shot_id}: {p.reason}")
        refs = [FrameRef(p.candidate.shot_id, p.candidate.frame_index, p.candidate.path) for p in picks]
        return LocationConditioning(
            id=slot.id,
            name=slot.name,
            appearance=app.value if app else "",
            reference_frames=refs,
            seed=stable_seed(self.seed, "location", slot.id),
        )

    def reference_candidates(self, frames: Sequence[FrameRow]) -> list[ViewCandidate]:
        """One candidate per earlier shot: its middle keyframe (past any continuity cross-fade)."""
        best: dict[str, FrameRow] = {}
        rank = {"middle": 0, "last": 1, "first": 2}
        for f in frames:
            cur = best.get(f.shot_id)
            if cur is None or rank.get(f.role, 3) < rank.get(cur.role, 3):
                best[f.shot_id] = f
        media = frame_media(self.mem, [f.event_id for f in best.values()])
        return [
            ViewCandidate(
                key=f.event_id,
                shot_id=f.shot_id,
                frame_index=f.frame_index,
                path=media.get(f.event_id, (None, None))[0],
                t=f.t,
                pose=f.pose,
                fov=f.fov,
                embedding=media.get(f.event_id, (None, None))[1],
            )
            for f in best.values()
        ]

    def continuity(self, shot: Shot, previous: Shot | None, trace: _Trace) -> FrameRef | None:
        if previous is None or not continues(previous, shot):
            return None
        last = [f for f in shot_frames(self.mem, previous.id) if f.role == "last" and f.t < shot.t]
        if not last:
            return None
        f = last[0]
        trace.add(
            f.event_id,
            "frame",
            1.0,
            f"continuity: last frame of {previous.id}, which ends at t={shot.t:g} at the same location",
        )
        return FrameRef(previous.id, f.frame_index, frame_media(self.mem, [f.event_id]).get(f.event_id, (None,))[0])

    def recent_window(self, shot: Shot, trace: _Trace) -> tuple[list[str], set[str]]:
        """What happened just before: the latest events before t, one per earlier shot."""
        out: list[str] = []
        seen: set[str] = set()
        n = self.config.recent_shots
        for event_id, text, unit in recent_events(self.mem, shot.t, limit=8 * n):
            if unit in seen:
                continue
            seen.add(unit)
            out.append(f"[{unit}] {text}")
            trace.add(
                event_id, "event", 1.0 - len(out) / (n + 1), f"short-term: #{len(out)} most recent before t={shot.t:g}"
            )
            if len(out) >= n:
                break
        return out, seen

    def embed_action(self, shot: Shot) -> Future | None:
        """Start embedding the action text for :meth:`retrieve`, or ``None`` when retrieval will not need it."""
        if not shot.action or self.config.retrieved_events <= 0 or self.mem.text is None:
            return None
        try:
            preset = preset_named(self.config.retrieval_preset)
        except BadInputError:
            return None  # the query itself reports the unknown preset
        if not preset.uses_text_vector:
            return None
        return self.mem.submit(self.mem.text.embed, [shot.action])

    def retrieve(self, shot: Shot, seen: set[str], trace: _Trace, action_vector: Future | None = None) -> list[str]:
        """Long-term: events before t that match the action and involve the shot's entities."""
        from agentmem.search.query import Query

        if not shot.action or self.config.retrieved_events <= 0:
            return []
        # The shot's characters and objects; the place is already covered by reference frames, and a place's
        # events can be numerous (the filter's candidate set is the main cost at 100k events).
        ents = list(shot.present) or ([shot.location] if shot.location else [])
        preset = self.config.retrieval_preset
        if self.mem.text is None and preset_named(preset).w_bm25 == 0:
            preset = "lexical"
        q = Query(
            text=shot.action,
            entities=ents,
            as_of=math.nextafter(shot.t, -math.inf),
            k=3 * self.config.retrieved_events + 4,
            preset=preset,
            text_vector=action_vector,
        )
        out: list[str] = []
        for h in self.mem.query(q):
            if h.t_start >= shot.t:  # belt and braces: as_of already excludes these
                continue
            unit = shot_of(h) or h.id
            if unit in seen:
                continue
            seen.add(unit)
            out.append(f"[{unit}] {h.text}")
            comps = ", ".join(f"{k}={v:.3f}" for k, v in h.components.items() if not k.endswith("_raw"))
            trace.add(h.id, "event", h.score, f"long-term: retrieved for the action ({comps})")
            if len(out) >= self.config.retrieved_events:
                break
        return out

    def facts(self, shot: Shot, slots: dict[str, EntitySlot], trace: _Trace) -> list[str]:
        """Facts valid at t about the shot's entities; a later fact with the same predicate and object wins."""
        ids = [m for e in slots for m in self.mem.store.member_ids(e)]
        if not ids:
            return []
        names = {s.id: s.name for s in slots.values()}
        out = []
        for r in facts_valid_at(self.mem.store.relations(ids), shot.t):
            text = f"{self._name(r.subject, names)} {r.predicate} {self._name(r.object, names)}"
            out.append(text)
            trace.add(f"relation:{r.id}", "relation", r.weight, f"fact valid at t={shot.t:g} (since t={r.t_from:g})")
        return out

    def _name(self, eid: str, names: dict[str, str]) -> str:
        if eid not in names:
            try:
                names[eid] = self.mem.entity(eid).name
            except Exception:  # noqa: BLE001 - a fact about an entity since merged away still reads
                names[eid] = eid
        return names[eid]


def facts_valid_at(relations: Sequence[Relation], t: float) -> list[Relation]:
    """The facts valid at ``t``, in story order, by the predicate rules of :mod:`agentmem.facts`.

    The store closes contradicted facts on write; a store written before that
    may hold them open, so their ends are also derived here the same way.

    Examples
    --------
    >>> facts = [Relation("mara", "holds", "lamp", 4.0, id=1), Relation("ida", "holds", "lamp", 90.0, id=2),
    ...          Relation("mara", "friend_of", "tomas", 0.0, id=3), Relation("ida", "friend_of", "tomas", 80.0, id=4)]
    >>> [(r.subject, r.predicate) for r in facts_valid_at(facts, 50.0)]
    [('mara', 'friend_of'), ('mara', 'holds')]
    >>> [(r.subject, r.predicate) for r in facts_valid_at(facts, 100.0)]
    [('mara', 'friend_of'), ('ida', 'friend_of'), ('ida', 'holds')]
    """
    ends = fact_ends(relations)
    valid = [
        r
        for r in relations
        if r.t_from <= t and (r.t_to is None or t < r.t_to) and (r.id not in ends or t < ends[r.id])
    ]
    return sorted(valid, key=lambda r: (r.t_from, r.id or 0))


def _valid(slot: EntitySlot, key: str, t: float):
    vals = [a for a in slot.attributes if a.key == key and a.valid_at(t)]
    return vals[-1] if vals else None


def compose_prompt(
    shot: Shot,
    entities: Sequence[EntityConditioning],
    location: LocationConditioning | None,
    facts: Sequence[str],
    continuing: bool,
) -> str:
    """The positive prompt: action, setting, each entity with its current look, facts, camera.

    >>> ent = EntityConditioning("mara", "Mara", "character", "silver hair, red raincoat")
    >>> compose_prompt(Shot("s1", 0, 4, action="Mara waves"), [ent], None, [], False)
    'Mara waves. Mara: silver hair, red raincoat. Camera: static.'
    """
    parts = []
    if shot.action:
        parts.append(shot.action.rstrip(". ") + ".")
    if location is not None:
        parts.append(f"Setting: {location.name}" + (f", {location.appearance}." if location.appearance else "."))
    for e in entities:
        parts.append(f"{e.name}: {e.appearance}." if e.appearance else f"{e.name}.")
    if facts:
        parts.append("; ".join(facts) + ".")
    cam = f"Camera: {shot.camera.move}"
    parts.append(cam + (", continuing directly from the previous shot." if continuing else "."))
    return " ".join(parts)


def compose_negative(shot: Shot, slots: dict[str, EntitySlot]) -> str:
    """Generic defects plus the superseded looks of present entities (so a changed costume stays changed)."""
    extra = []
    for eid in shot.present:
        slot = slots[eid]
        cur = _valid(slot, "appearance", shot.t)
        now = {p.strip().lower() for p in (cur.value if cur else "").split(",")}
        for a in slot.attributes:
            if a.key == "appearance" and a.t_to is not None and a.t_to <= shot.t:
                extra += [
                    f"{slot.name} with {p.strip()}"
                    for p in a.value.split(",")
                    if p.strip() and p.strip().lower() not in now
                ]
    return ", ".join([NEGATIVE_BASE, *dict.fromkeys(extra)])


def plan_without_memory(shot: Shot, *, seed: int = 0) -> ShotPlan:
    """The memory-less baseline: a plan from the shot's own text only.

    It knows who and where the shot names, its action and camera, and any
    appearance the shot itself declares in ``changes``; it has no appearance
    memory, no reference images or frames, no continuity and no per-entity
    seed (each shot is sampled on its own, as a memory-less text-to-video
    pipeline samples each shot with its own seed).

    >>> plan = plan_without_memory(Shot("s1", 0, 4, location="tower", characters=("mara",), action="Mara waves"))
    >>> plan.static.entities[0].appearance, plan.static.location.reference_frames, plan.dynamic.continue_from
    ('', [], None)
    """

    def look(eid: str) -> str:
        return shot.changes.get(eid, {}).get("appearance", "")

    ents = [
        EntityConditioning(
            id=e,
            name=e.replace("_", " ").title(),
            kind=kind,
            appearance=look(e),
            seed=stable_seed(seed, "shot", shot.id, e),
        )
        for kind, ids in (("character", shot.characters), ("object", shot.objects))
        for e in ids
    ]
    loc = None
    if shot.location:
        loc = LocationConditioning(
            id=shot.location,
            name=shot.location.replace("_", " ").title(),
            appearance=look(shot.location),
            seed=stable_seed(seed, "shot", shot.id, shot.location),
        )
    return ShotPlan(
        shot_id=shot.id,
        t=shot.t,
        duration=shot.duration,
        prompt=compose_prompt(shot, ents, loc, [], False),
        negative_prompt=NEGATIVE_BASE,
        static=StaticConditioning(entities=ents, location=loc),
        dynamic=DynamicConditioning(
            action=shot.action,
            motion=shot.motion or motion_for("", shot.action).kind,
            camera=CameraConditioning(shot.camera.move, shot.camera.pose, shot.camera.fov),
        ),
        seed=stable_seed(seed, "shot", shot.id),
    )


__all__ = [
    "NEGATIVE_BASE",
    "PLANNER_PRESET",
    "Planner",
    "PlannerConfig",
    "compose_negative",
    "compose_prompt",
    "continues",
    "facts_valid_at",
    "plan_without_memory",
    "stable_seed",
]
