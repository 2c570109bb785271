"""The parameters of the context-frame policies: frozen config dataclasses, and their ``NAME=VALUE`` text form.

Every policy's config is a :class:`PolicyConfig`, whose fields are the scene's scale (distances in metres, how
many samples a view gets); each policy adds its own knobs in a subclass. The scale fields are what a larger or
smaller scene changes, so they have one name everywhere: ``dataclasses.replace(config, far=80.0)`` works on every
policy's config. :func:`parse_params` turns ``["suppress=2.0"]`` (the CLI's ``--policy-param``) into a config.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

from agentmem.errors import BadInputError
from agentmem.geometry import VIEW_M_PER_RAD


@dataclass(frozen=True)
class PolicyConfig:
    """The scene's scale, which every policy's config carries (a policy reads the fields it needs).

    ``m_per_rad``: metres of camera distance one radian between viewing directions counts as (pose distance);
    ``reach``: how far, in metres, a frame's camera may be from the view's to be a candidate at all (``nearby``);
    ``keep``: at most this many candidates, nearest first (it bounds every policy's per-frame work);
    ``near`` and ``far``: the depth range, in metres, of frustum samples and frustum tests;
    ``samples``: how many points a view's frustum is sampled with.
    """

    m_per_rad: float = VIEW_M_PER_RAD
    reach: float = 60.0
    keep: int = 256
    near: float = 0.5
    far: float = 40.0
    samples: int = 400


@dataclass(frozen=True)
class PoseConfig(PolicyConfig):
    """``suppress``: a frame within this pose distance of one already chosen is skipped as a near-duplicate."""

    suppress: float = 1.0


@dataclass(frozen=True)
class FovConfig(PolicyConfig):
    """``age_penalty``: a frame's coverage gain is divided by ``1 + age_penalty * age in hours``."""

    age_penalty: float = 0.02


@dataclass(frozen=True)
class OverlapConfig(PolicyConfig):
    """``threshold``: the least frustum overlap taken; ``dedup_s``: a frame within this many seconds of one
    already chosen is skipped."""

    threshold: float = 0.2
    dedup_s: float = 2.0


@dataclass(frozen=True)
class VotesConfig(PolicyConfig):
    """``shortlist``: how many of the best-voted frames are scored on the view's voxels; ``apart``: the least pose
    distance between two of them (a place walked a hundred times must not fill the shortlist with one view)."""

    shortlist: int = 48
    apart: float = 0.25


@dataclass(frozen=True)
class StoryConfig(PolicyConfig):
    """The story planner's rule (see :func:`~agentmem.spatial.policies.story`).

    ``far``: frames see 20 m (stories' sets are rooms and streets); ``depths``: the distances, in metres, of the
    view's sample points, ``grid`` rays (across, down) at each; ``age_weight``: subtracted from a frame's coverage
    gain per unit of age, where age is ``(t - t_frame) / age_span`` (``None``: from the oldest frame to the view,
    so seconds and epoch dates behave alike); ``min_gain``: the least share of new coverage a pick must add;
    ``subset_tolerance``: a frame that adds at most this share of its own coverage to one chosen is redundant;
    ``same_pose``: a frame within this many metres and degrees of the view's camera, with its field of view, is
    the view's own and comes first.
    """

    far: float = 20.0
    depths: tuple[float, ...] = (1.5, 3.0, 6.0, 12.0)
    grid: tuple[int, ...] = (9, 5)
    age_weight: float = 0.2
    age_span: float | None = None
    min_gain: float = 0.02
    subset_tolerance: float = 0.1
    same_pose: float = 1e-6


def parse_params(config: PolicyConfig, pairs: Sequence[str], where: str = "--policy-param") -> PolicyConfig:
    """``config`` with each ``NAME=VALUE`` of ``pairs`` set: numbers for number fields, comma-separated numbers for
    tuples; floats finite and at least 0, counts at least 1. One line names a wrong name or value.

    Examples
    --------
    >>> parse_params(PoseConfig(), ["suppress=2.5", "far=80"]).suppress
    2.5
    >>> parse_params(StoryConfig(), ["depths=1,2"]).depths
    (1.0, 2.0)
    >>> parse_params(PoseConfig(), ["suppress=-1"])
    Traceback (most recent call last):
    ...
    agentmem.errors.BadInputError: --policy-param: suppress: must be a finite number at least 0, got '-1'
    >>> parse_params(PoseConfig(), ["age=1"])
    Traceback (most recent call last):
    ...
    agentmem.errors.BadInputError: --policy-param: age: not a parameter of this policy; it has far, keep, ...
    """
    known = {f.name: getattr(config, f.name) for f in fields(config)}
    changes: dict[str, object] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep:
            raise BadInputError(f"{where}: {pair!r}: must be NAME=VALUE")
        if name not in known:
            raise BadInputError(f"{where}: {name}: not a parameter of this policy; it has {', '.join(sorted(known))}")
        current = known[name]
        if isinstance(current, tuple):
            changes[name] = tuple(_number(t, type(current[0]), f"{where}: {name}") for t in text.split(","))
        else:
            changes[name] = _number(text, int if isinstance(current, int) else float, f"{where}: {name}")
    return replace(config, **changes)  # type: ignore[arg-type]


def _number(text: str, kind: type, where: str) -> float | int:
    """A count (at least 1) or a finite float (at least 0) from text."""
    try:
        value = kind(text.strip())
    except ValueError:
        raise BadInputError(
            f"{where}: must be {'a whole number' if kind is int else 'a number'}, got {text!r}"
        ) from None
    if kind is int and value < 1:
        raise BadInputError(f"{where}: must be at least 1, got {text!r}")
    if kind is float and not (math.isfinite(value) and value >= 0):
        raise BadInputError(f"{where}: must be a finite number at least 0, got {text!r}")
    return value
