"""Names compared as people mean them: one normal form for entity names and aliases, shared by every layer."""

from __future__ import annotations

import unicodedata

_ARTICLES = ("the ", "a ", "an ")
# Combining accents after letters below this code point (Latin, Greek, Cyrillic) are dropped.
_LATIN_GREEK_CYRILLIC_END = 0x0530


def normalize_name(name: str) -> str:
    """Comparable form of a name: the letters and digits of every script, case-folded.

    Accents on Latin, Greek and Cyrillic letters are dropped ("Zoë" = "zoe");
    the marks of other scripts are part of their letters and are kept.

    Examples
    --------
    >>> normalize_name("  The Keeper! ")
    'keeper'
    >>> normalize_name("Zoë_Smith")
    'zoe smith'
    >>> normalize_name("李雷"), normalize_name("Анна-Мария"), normalize_name("דוד")
    ('李雷', 'анна мария', 'דוד')
    """
    out: list[str] = []
    for c in unicodedata.normalize("NFKD", name).casefold():
        cat = unicodedata.category(c)
        if cat == "Mn" and out and ord(out[-1]) < _LATIN_GREEK_CYRILLIC_END:
            continue
        out.append(c if cat[0] in "LNM" else " ")
    s = unicodedata.normalize("NFC", " ".join("".join(out).split()))
    for art in _ARTICLES:
        if s.startswith(art) and len(s) > len(art):
            s = s[len(art) :]
            break
    return s
