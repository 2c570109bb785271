"""The closed loop: plan -> generate -> perceive -> write back, one shot at a time.

:class:`Director` holds a :class:`~agentmem.memory.Memory` and a video back end.
:meth:`Director.step` takes one shot (decided at run time, if you like) and
returns its plan and clip; the rendered keyframes go back into memory as
events (see :mod:`agentmem.story.frames`), so later shots retrieve what was
actually shown. :func:`run_story` drives a whole validated story through it.

Examples
--------
>>> import tempfile
>>> from agentmem.memory import Memory
>>> from generators import StoryboardGenerator
>>> tmp = tempfile.mkdtemp()
>>> mem = Memory(tmp + "/mem", text_embedder=None)
>>> d = Director(mem, StoryboardGenerator(width=64, height=48, num_frames=4), tmp + "/out")
>>> d.declare([{"id": "mara", "kind": "character", "name": "Mara", "appearance": "red coat"},
...            {"id": "tower", "kind": "location", "appearance": "white tower"}])
>>> plan, clip = d.step({"id": "s1", "t": 0, "duration": 2, "location": "tower", "characters": ["mara"],
...                      "action": "Mara waves"})
>>> plan, clip = d.step({"id": "s2", "t": 2, "duration": 2, "location": "tower", "characters": ["mara"]})
>>> plan.dynamic.continue_from.shot_id, [f.shot_id for f in plan.static.location.reference_frames]
('s1', ['s1'])
>>> mem.close()
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentmem.errors import BadInputError, FormatError
from agentmem.model import EntityDecl, MediaRef, Relation
from agentmem.spatial.world import SpatialMemory
from agentmem.story.format import Shot, Story, StoryEntity, parse_entity, parse_shot
from agentmem.story.frames import Keyframe, shot_in_memory, write_back
from agentmem.story.planner import Planner, PlannerConfig
from generators.conditioning import Clip, ShotPlan


@dataclass(frozen=True)
class RenderOptions:
    """Frame geometry handed to the back end (``None`` takes the back end's default)."""

    width: int | None = None
    height: int | None = None
    num_frames: int | None = None
    fps: int | None = None


@dataclass
class ShotResult:
    """What one step produced."""

    shot: Shot
    plan: ShotPlan
    clip: Clip
    keyframes: list[Keyframe]


@dataclass
class StoryRun:
    """A story driven through the loop, in story order."""

    story: Story
    results: list[ShotResult] = field(default_factory=list)

    @property
    def plans(self) -> list[ShotPlan]:
        return [r.plan for r in self.results]

    @property
    def clips(self) -> list[Clip]:
        return [r.clip for r in self.results]


class Director:
    """Drive generation one shot at a time with memory in the loop.

    Parameters
    ----------
    mem : Memory
        Holds the entities, and receives every rendered shot.
    generator : VideoGenerator
        Any back end of :mod:`generators` (``generate(plan, ...) -> Clip``).
    frames_dir : str
        Where keyframe PNGs are written (``<frames_dir>/<shot_id>/frame_0007.png``).
    render : RenderOptions, optional
        Geometry passed to the back end.
    planner_config : PlannerConfig, optional
        Knobs of the planner.
    seed : int
        Story seed.
    """

    def __init__(
        self,
        mem,
        generator,
        frames_dir: str,
        *,
        render: RenderOptions | None = None,
        planner_config: PlannerConfig | None = None,
        seed: int = 0,
        t_origin: float = 0.0,
    ):
        self.mem = mem
        self.generator = generator
        self.frames_dir = os.path.abspath(frames_dir)
        self.render = render or RenderOptions()
        self.planner: Callable[[Shot, Shot | None], ShotPlan] = Planner(
            mem, planner_config, seed=seed, frame_store=lambda: self.spatial
        )
        self.t_origin = t_origin
        self.entities: dict[str, StoryEntity] = {}
        self.history: list[ShotResult] = []
        self.spatial: SpatialMemory | None = None

    # ------------------------------------------------------------- entities

    def declare(self, entities: Iterable[StoryEntity | Mapping[str, Any]], *, base_dir: str | None = None) -> None:
        """Put entities into memory; their declared attributes hold from ``t_origin`` on.

        Everything is validated before the first write.
        """
        parsed = [
            e if isinstance(e, StoryEntity) else parse_entity(e, f"entity {e.get('id', '?')}", base_dir)
            for e in entities
        ]
        ids = [e.id for e in parsed]
        for e in parsed:
            if e.id in self.entities or ids.count(e.id) > 1:
                raise FormatError(f"entity {e.id}: id: declared twice")
        decls = []
        for e in parsed:
            attrs = dict(e.attributes)
            if e.appearance:
                attrs["appearance"] = e.appearance
            # resolve=False: story ids are explicit, so never let fuzzy name matching merge two of them.
            decls.append(
                EntityDecl(
                    e.id,
                    e.kind,
                    e.name,
                    tuple(e.aliases),
                    attrs,
                    tuple(MediaRef(path=p) for p in e.reference_images),
                    self.t_origin,
                    resolve=False,
                )
            )
        self.mem.write(entities=decls)
        self.entities.update((e.id, e) for e in parsed)

    # ----------------------------------------------------------------- loop

    def step(self, shot: Shot | Mapping[str, Any]) -> tuple[ShotPlan, Clip]:
        """Plan, generate, perceive and write back one shot; returns its plan and clip."""
        # 1. Check the shot against the declared entities and the previous shot (before any write).
        shot = self.check_inputs(shot)
        previous = self.history[-1].shot if self.history else None
        # 2. Store the shot's own declared state (changes, facts) at its t.
        self.apply_shot_state(shot)
        # 3. Plan from memory as of t (a shot with a pose reads the frame store for its location references).
        self._spatial(shot)
        plan = self.planner(shot, previous)
        # 4. Generate.
        clip = self.generator.generate(
            plan,
            width=self.render.width,
            height=self.render.height,
            num_frames=self.render.num_frames,
            fps=self.render.fps,
        )
        # 5. Perceive and write back: keyframes, their image embeddings, pose and provenance.
        keyframes = write_back(self.mem, shot, clip.frames, self.frames_dir, self._spatial(shot))
        self.history.append(ShotResult(shot, plan, clip, keyframes))
        return plan, clip

    def _spatial(self, shot: Shot) -> SpatialMemory | None:
        """The memory's frame store, opened at the first shot with a camera pose."""
        if shot.camera.pose is not None and self.spatial is None:
            self.spatial = SpatialMemory(self.mem.dir, store=self.mem.store)
        return self.spatial

    def check_inputs(self, shot: Shot | Mapping[str, Any]) -> Shot:
        previous = self.history[-1].shot if self.history else None
        if isinstance(shot, Mapping):
            shot = parse_shot(dict(shot), self.entities, previous, where=f"shot {shot.get('id', '?')}")
        else:  # re-check a Shot built in code against this session
            parse_shot(shot.to_dict(), self.entities, previous, where=f"shot {shot.id}")
        if any(r.shot.id == shot.id for r in self.history) or shot_in_memory(self.mem, shot.id):
            raise BadInputError(f"shot {shot.id}: id: this shot is already in memory; shot ids must be unique")
        return shot

    def apply_shot_state(self, shot: Shot) -> None:
        for eid, attrs in shot.changes.items():
            for key, value in attrs.items():
                self.mem.set_attribute(eid, key, value, shot.t, source=f"shot {shot.id}")
        for s, p, o in shot.facts:
            self.mem.add_relation(Relation(s, p, o, t_from=shot.t, evidence=[f"shot:{shot.id}"]))


def run_story(
    story: Story,
    mem,
    generator,
    frames_dir: str,
    *,
    render: RenderOptions | None = None,
    planner_config: PlannerConfig | None = None,
    progress: bool = False,
    shots: Sequence[Shot] | None = None,
) -> StoryRun:
    """Drive a validated story through a :class:`Director`.

    The story was validated in full when it was parsed, so nothing is written
    for a bad story.
    """
    from tqdm import tqdm

    director = Director(
        mem,
        generator,
        frames_dir,
        render=render,
        planner_config=planner_config,
        seed=story.seed,
        t_origin=story.t_origin,
    )
    director.declare(story.entities)
    run = StoryRun(story)
    todo = list(shots if shots is not None else story.shots)
    for shot in tqdm(todo, desc=story.title[:30], unit="shot", disable=not (progress and sys.stderr.isatty())):
        director.step(shot)
        run.results.append(director.history[-1])
    return run


__all__ = ["Director", "RenderOptions", "ShotResult", "StoryRun", "run_story"]
