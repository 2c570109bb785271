"""Entity resolution: which stored entity does a name, alias or id denote?

Matching runs in a fixed order and stops at the first stage that decides:

1. exact id;
2. exact normalized name or alias (case, accents, punctuation and a leading
   article are ignored: "The Keeper" == "keeper");
3. fuzzy name match: :func:`difflib.SequenceMatcher` ratio >= ``FUZZY_THRESHOLD``
   on normalized names of at least ``FUZZY_MIN_LEN`` characters whose digit
   runs are identical, so ``face_1`` never matches ``face_12``;
4. embedding similarity >= ``EMBED_THRESHOLD`` between descriptions of entities
   of the same kind.

A candidate is compared with each canonical entity's *own* names only, never
through a chain of earlier merges, so merging cannot spread transitively. A
name that matches two entities equally is ambiguous and is not merged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

import numpy as np

from agentmem.names import normalize_name

FUZZY_THRESHOLD = 0.92
FUZZY_MIN_LEN = 5
EMBED_THRESHOLD = 0.95
_DIGITS = re.compile(r"\d+")


def fuzzy_score(a: str, b: str) -> float:
    """Similarity of two normalized names, 0 when they cannot be the same.

    Examples
    --------
    >>> fuzzy_score("face 1", "face 12")
    0.0
    >>> round(fuzzy_score("caroline", "caroline s"), 2)
    0.89
    """
    if _DIGITS.findall(a) != _DIGITS.findall(b):
        return 0.0
    if min(len(a), len(b)) < FUZZY_MIN_LEN:
        return 0.0
    return SequenceMatcher(None, a, b).ratio()


@dataclass(frozen=True)
class Match:
    entity_id: str
    stage: str
    score: float


def best_match(
    names: list[str],
    candidates: dict[str, list[str]],
    *,
    kind: str | None = None,
    kinds: dict[str, str] | None = None,
    vector: np.ndarray | None = None,
    vectors: dict[str, np.ndarray] | None = None,
) -> Match | None:
    """Find the stored entity that ``names`` denote, or ``None``.

    Parameters
    ----------
    names : list of str
        The new entity's name and aliases.
    candidates : dict
        Canonical entity id -> its own normalized names and aliases.
    kind, kinds : optional
        The new entity's kind and each candidate's kind; the embedding stage
        only compares entities of the same kind.
    vector, vectors : optional
        Unit description embeddings of the new entity and of candidates.

    Examples
    --------
    >>> cands = {"mara": ["mara", "keeper"], "face_12": ["face 12"]}
    >>> best_match(["The Keeper"], cands)
    Match(entity_id='mara', stage='exact', score=1.0)
    >>> best_match(["face_1"], cands) is None
    True
    """
    norms = [n for n in (normalize_name(x) for x in names) if n]
    exact = sorted({eid for eid, own in candidates.items() if any(n in own for n in norms)})
    if len(exact) == 1:
        return Match(exact[0], "exact", 1.0)
    if len(exact) > 1:
        return None
    scored = sorted(
        ((max(fuzzy_score(n, o) for n in norms for o in own), eid) for eid, own in candidates.items() if own and norms),
        reverse=True,
    )
    if scored and scored[0][0] >= FUZZY_THRESHOLD:
        if len(scored) > 1 and scored[1][0] == scored[0][0]:
            return None
        return Match(scored[0][1], "fuzzy", round(scored[0][0], 4))
    if vector is not None and vectors:
        sims = sorted(
            (
                (float(np.dot(vector, v)), eid)
                for eid, v in vectors.items()
                if kinds is None or kind is None or kinds.get(eid) == kind
            ),
            reverse=True,
        )
        if sims and sims[0][0] >= EMBED_THRESHOLD and (len(sims) == 1 or sims[1][0] < sims[0][0]):
            return Match(sims[0][1], "embedding", round(sims[0][0], 4))
    return None


def find_mentions(text: str, aliases: dict[str, set[str]]) -> dict[str, str]:
    """Entities whose name or alias occurs in ``text`` as whole words.

    Parameters
    ----------
    text : str
        Free query text.
    aliases : dict
        Normalized alias -> canonical entity ids.

    Returns
    -------
    dict
        Canonical entity id -> the alias that matched (longest wins).

    Examples
    --------
    >>> find_mentions("Where did the keeper go?", {"keeper": {"mara"}, "kee": {"x"}})
    {'mara': 'keeper'}
    """
    words = normalize_name(text).split()
    found: dict[str, str] = {}
    max_n = max((len(a.split()) for a in aliases), default=0)
    for n in range(min(max_n, len(words)), 0, -1):
        for i in range(len(words) - n + 1):
            gram = " ".join(words[i : i + n])
            for eid in sorted(aliases.get(gram, ())):
                found.setdefault(eid, gram)
    return found


def select_diverse(vectors: list[np.ndarray], cap: int) -> list[int]:
    """Indices of at most ``cap`` vectors: the first, then farthest-point picks.

    Deterministic (ties go to the earlier vector), so the same inputs always
    keep the same set; unlike random sampling it keeps the spread of looks.

    Examples
    --------
    >>> vs = [np.array([1.0, 0]), np.array([0.99, 0.14]), np.array([0.0, 1.0])]
    >>> select_diverse(vs, 2)
    [0, 2]
    """
    if len(vectors) <= cap:
        return list(range(len(vectors)))
    mat = np.stack(vectors)
    chosen = [0]
    best = mat @ mat[0]
    while len(chosen) < cap:
        nxt = int(np.argmin(np.where(np.isin(np.arange(len(mat)), chosen), np.inf, best)))
        chosen.append(nxt)
        best = np.maximum(best, mat @ mat[nxt])
    return sorted(chosen)
