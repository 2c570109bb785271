"""Consistency evaluation: does memory keep identities and places stable across shots?

For a folder written by ``agentmem generate`` (the *with memory* condition), the
same story is rendered again in the same run by the memory-less planner
(:func:`agentmem.story.planner.plan_without_memory`: the shot's text only, no
appearance memory, no reference images or frames, no continuity, no stable
per-entity seed) with the same back end settings. Both conditions are then
measured the same way, with the memory's default image descriptor
(:class:`~agentmem.encoders.embedders.DescriptorImageEmbedder`, cosine similarity):

- **entity identity**: for each entity, the mean similarity of its rendered
  look over every pair of its shots in which the story says its appearance is
  the same (a declared change is not an inconsistency). The storyboard back end
  reports no boxes, so the look is measured on an *identity probe*: the entity
  re-rendered alone, from exactly the conditioning the shot's plan gave it, on
  an empty backdrop, masked to the pixels that differ from the empty render and
  cropped to them. For the storyboard this is the figure drawn in the shot (its
  pixels depend on that conditioning only); for a learned back end it measures
  the conditioning rather than the shot, so prefer boxes where a back end
  reports them (``clip.metadata["entity_boxes"]``, not yet provided).
- **location**: for each location, the mean similarity of the backdrop (the top
  third of the middle keyframe, above the figures) over every pair of shots there
  in which its declared appearance is the same.

Scores are averaged per entity (or location), then over entities (macro mean).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

from agentmem.encoders.embedders import DescriptorImageEmbedder
from agentmem.errors import BadInputError
from agentmem.story.format import Story, parse_story
from agentmem.story.planner import plan_without_memory
from generators.conditioning import DynamicConditioning, EntityConditioning, ShotPlan, StaticConditioning

PROBE_SIZE = (64, 96)  # width, height of an identity probe


@dataclass
class Measure:
    """One measure of one story in both conditions."""

    story: str
    measure: str
    subjects: int
    pairs: int
    with_memory: float
    without_memory: float
    per_subject: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def delta(self) -> float:
        return self.with_memory - self.without_memory


class Prober:
    """Renders identity probes of entities with a storyboard back end and describes them."""

    def __init__(self, embedder: DescriptorImageEmbedder | None = None):
        from generators import StoryboardGenerator

        self.gen = StoryboardGenerator(width=PROBE_SIZE[0], height=PROBE_SIZE[1], num_frames=1, caption=False)
        self.embedder = embedder or DescriptorImageEmbedder()
        self.empty = self._render([])
        self._cache: dict[tuple, np.ndarray] = {}

    def _render(self, ents: list[EntityConditioning]) -> np.ndarray:
        plan = ShotPlan("probe", 0.0, 1.0, "", "", StaticConditioning(entities=ents), DynamicConditioning())
        return self.gen.generate(plan).frames[0]

    def describe(self, e: EntityConditioning) -> np.ndarray:
        """Descriptor of the entity's pixels (background set to grey), cropped to them."""
        key = (e.id, e.kind, e.appearance, tuple(e.reference_images), e.seed)
        if key not in self._cache:
            img = self._render(
                [EntityConditioning(e.id, e.name, e.kind, e.appearance, list(e.reference_images), e.seed)]
            )
            mask = np.abs(img.astype(int) - self.empty.astype(int)).sum(axis=2) > 24
            if not mask.any():
                self._cache[key] = self.embedder.embed_array(img)
            else:
                ys, xs = np.nonzero(mask)
                crop = np.where(mask[..., None], img, 128).astype(np.uint8)[
                    ys.min() : ys.max() + 1, xs.min() : xs.max() + 1
                ]
                self._cache[key] = self.embedder.embed_array(crop)
        return self._cache[key]


def backdrop(frame: np.ndarray) -> np.ndarray:
    """The top third of a frame: backdrop above the figures."""
    return frame[: max(1, frame.shape[0] // 3)]


def entity_groups(story: Story) -> dict[str, dict[str, list[str]]]:
    """entity -> appearance -> shot ids that show it with that declared appearance."""
    out: dict[str, dict[str, list[str]]] = {}
    for s in story.shots:
        for e in s.present:
            out.setdefault(e, {}).setdefault(story.appearance_at(e, s.t), []).append(s.id)
    return out


def location_groups(story: Story) -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {}
    for s in story.shots:
        if s.location:
            out.setdefault(s.location, {}).setdefault(story.appearance_at(s.location, s.t), []).append(s.id)
    return out


def _measure(
    story: Story,
    name: str,
    groups: dict[str, dict[str, list[str]]],
    vec_mem: dict[tuple[str, str], np.ndarray],
    vec_base: dict[tuple[str, str], np.ndarray],
) -> Measure:
    per: dict[str, tuple[float, float]] = {}
    pairs = 0
    for subject, by_state in groups.items():
        keys = [(subject, sid) for ids in by_state.values() for sid in ids]
        sims_m, sims_b = [], []
        for ids in by_state.values():
            for a, b in combinations(ids, 2):
                sims_m.append(float(vec_mem[(subject, a)] @ vec_mem[(subject, b)]))
                sims_b.append(float(vec_base[(subject, a)] @ vec_base[(subject, b)]))
        if sims_m and keys:
            per[subject] = (float(np.mean(sims_m)), float(np.mean(sims_b)))
            pairs += len(sims_m)
    if not per:
        return Measure(story.title, name, 0, 0, float("nan"), float("nan"))
    return Measure(
        story.title,
        name,
        len(per),
        pairs,
        float(np.mean([v[0] for v in per.values()])),
        float(np.mean([v[1] for v in per.values()])),
        per,
    )


def evaluate_dir(out_dir: str | Path, *, prober: Prober | None = None) -> list[Measure]:
    """Measure a folder written by ``agentmem generate`` against the memory-less baseline, rendered now."""
    from PIL import Image

    from generators import StoryboardGenerator

    out = Path(out_dir)
    # 1. Read what generate wrote.
    for name in ("story.json", "plan.json", "run.json"):
        if not (out / name).is_file():
            raise BadInputError(f"{out}: {name} is missing; run `agentmem generate STORY --out {out}` first")
    # Paths in these files are relative to the folder (agentmem.story.produce.relative_paths).
    story = parse_story(json.loads((out / "story.json").read_text()), source=str(out / "story.json"), base_dir=out)
    plans = [ShotPlan.from_dict(d) for d in json.loads((out / "plan.json").read_text())]
    run = json.loads((out / "run.json").read_text())
    if run.get("backend") != "storyboard":
        raise BadInputError(
            f"{out}: consistency is measured against a storyboard baseline; "
            f"this folder was made with {run.get('backend')!r}"
        )
    geo = run["render"]
    shots = {s["id"]: s for s in run["shots"]}
    prober = prober or Prober()
    emb = prober.embedder
    # 2. Render the memory-less baseline with the same geometry.
    gen = StoryboardGenerator(width=geo["width"], height=geo["height"], fps=geo["fps"])
    base_plans = {s.id: plan_without_memory(s, seed=story.seed) for s in story.shots}
    base_frames = {sid: gen.generate(p, num_frames=shots[sid]["n_frames"]).frames for sid, p in base_plans.items()}
    # 3. Describe entities (identity probes) and locations (backdrops) in both conditions.
    ent_m: dict[tuple[str, str], np.ndarray] = {}
    ent_b: dict[tuple[str, str], np.ndarray] = {}
    for p in plans:
        for e in p.static.entities:
            ent_m[(e.id, p.shot_id)] = prober.describe(e)
        for e in base_plans[p.shot_id].static.entities:
            ent_b[(e.id, p.shot_id)] = prober.describe(e)
    loc_m: dict[tuple[str, str], np.ndarray] = {}
    loc_b: dict[tuple[str, str], np.ndarray] = {}
    for s in story.shots:
        if not s.location:
            continue
        mid = next(k for k in shots[s.id]["keyframes"] if k["role"] == "middle")
        with Image.open(out / mid["path"]) as im:
            loc_m[(s.location, s.id)] = emb.embed_array(backdrop(np.asarray(im.convert("RGB"))))
        loc_b[(s.location, s.id)] = emb.embed_array(backdrop(base_frames[s.id][mid["frame_index"]]))
    # 4. Pairwise similarity within same declared state, both conditions.
    return [
        _measure(story, "entity identity", entity_groups(story), ent_m, ent_b),
        _measure(story, "location", location_groups(story), loc_m, loc_b),
    ]


def format_table(measures: list[Measure]) -> str:
    """A plain-text table of the measures, with an overall macro mean per measure."""
    lines = [f"{'story':<24} {'measure':<16} {'subj':>4} {'pairs':>5} {'with memory':>11} {'without':>8} {'delta':>7}"]
    for m in measures:
        lines.append(
            f"{m.story[:24]:<24} {m.measure:<16} {m.subjects:>4} {m.pairs:>5} {m.with_memory:>11.3f} "
            f"{m.without_memory:>8.3f} {m.delta:>+7.3f}"
        )
    for name in dict.fromkeys(m.measure for m in measures):
        ms = [m for m in measures if m.measure == name and m.pairs]
        if len(ms) > 1:
            w, wo = np.mean([m.with_memory for m in ms]), np.mean([m.without_memory for m in ms])
            lines.append(
                f"{'ALL (mean)':<24} {name:<16} {sum(m.subjects for m in ms):>4} "
                f"{sum(m.pairs for m in ms):>5} {w:>11.3f} {wo:>8.3f} {w - wo:>+7.3f}"
            )
    return "\n".join(lines)


def plot(measures: list[Measure], path: str | Path) -> str:
    """Grouped bars (with vs without memory) per story and measure; returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{m.story[:18]}\n{m.measure}" for m in measures]
    x = np.arange(len(measures))
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(measures)), 4))
    ax.bar(x - 0.2, [m.with_memory for m in measures], 0.4, label="with memory")
    ax.bar(x + 0.2, [m.without_memory for m in measures], 0.4, label="without memory (shot text only)")
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("mean pairwise cosine (descriptor)")
    ax.set_title("Consistency across shots")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def to_json(measures: list[Measure]) -> list[dict]:
    return [
        {
            "story": m.story,
            "measure": m.measure,
            "subjects": m.subjects,
            "pairs": m.pairs,
            "with_memory": round(m.with_memory, 4),
            "without_memory": round(m.without_memory, 4),
            "delta": round(m.delta, 4),
            "per_subject": {k: [round(a, 4), round(b, 4)] for k, (a, b) in m.per_subject.items()},
        }
        for m in measures
    ]


__all__ = [
    "Measure",
    "Prober",
    "backdrop",
    "entity_groups",
    "evaluate_dir",
    "format_table",
    "location_groups",
    "plot",
    "to_json",
]
