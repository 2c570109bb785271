"""Story-time parsing: seconds, ISO-8601 and dated phrases, all to float seconds.

Dates become seconds since the Unix epoch in UTC, so numeric story time and
calendar time live on one axis.
"""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from agentmem.errors import BadTimeError

MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
MONTHS.update({m.lower(): i for i, m in enumerate(calendar.month_abbr) if m})

_LOCOMO_RE = re.compile(
    r"^\s*(\d{1,2}):(\d{2})\s*([ap]m)\s+on\s+(\d{1,2})\s+([A-Za-z]+),?\s+(\d{4})\s*$", re.IGNORECASE
)


def parse_time(value: object, *, field: str = "time") -> float:
    """Parse story time given as seconds or as a date into float seconds.

    Parameters
    ----------
    value : float, int or str
        Seconds (``12.5``, ``"12.5"``), an ISO-8601 date or date-time
        (``"2023-05-08"``, ``"2023-05-08T13:56:00+02:00"``), or a LoCoMo-style
        date-time (``"1:56 pm on 8 May, 2023"``). Naive date-times are UTC.
    field : str
        The name of the field, used in the error message.

    Returns
    -------
    float
        Seconds; for dates, seconds since the Unix epoch (UTC).

    Raises
    ------
    BadTimeError
        If the value is none of the above, or not finite.

    Examples
    --------
    >>> parse_time("40")
    40.0
    >>> parse_time("1970-01-02")
    86400.0
    >>> parse_time("1:56 pm on 8 May, 2023")
    1683554160.0
    """
    if isinstance(value, bool):
        raise BadTimeError(f"{field}: expected seconds or an ISO-8601 date, got {value!r}")
    if isinstance(value, (int, float)):
        try:
            seconds = float(value)
        except OverflowError:
            raise BadTimeError(f"{field}: {str(value)[:20]}... is too large to be a time in seconds") from None
    elif isinstance(value, str):
        seconds = _parse_str(value.strip(), field)
    else:
        raise BadTimeError(f"{field}: expected seconds or an ISO-8601 date, got {type(value).__name__}")
    if not math.isfinite(seconds):
        raise BadTimeError(f"{field}: time must be finite, got {value!r}")
    return seconds


def _parse_str(s: str, field: str) -> float:
    if not s:
        raise BadTimeError(f"{field}: empty time; give seconds (e.g. 12.5) or an ISO-8601 date")
    try:
        return float(s)
    except ValueError:
        pass
    m = _LOCOMO_RE.match(s)
    if m:
        hour, minute, ampm, day, month, year = m.groups()
        mon = MONTHS.get(month.lower())
        if mon is None:
            raise BadTimeError(f"{field}: unknown month {month!r} in {s!r}")
        h = int(hour) % 12 + (12 if ampm.lower() == "pm" else 0)
        return _epoch(datetime(int(year), mon, int(day), h, int(minute), tzinfo=timezone.utc))
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise BadTimeError(
            f"{field}: cannot parse {s!r}; give seconds (e.g. 12.5) or an ISO-8601 date like 2023-05-08T13:56"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return _epoch(dt)


def _epoch(dt: datetime) -> float:
    return dt.timestamp()


def format_time(seconds: float) -> str:
    """Human form: dates (after 1980) as ISO-8601 UTC, story seconds as ``t=…s``."""
    if seconds >= 315532800:
        return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")
    return f"t={seconds:g}s"


@dataclass(frozen=True)
class TimeWindow:
    """A span of story time named by an expression in query text."""

    t0: float
    t1: float
    expression: str


_NUM_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "few": 3}
_AGO_RE = re.compile(r"\b(\d+|a|an|one|two|three|four|five|six|few)\s+(day|week|month|year)s?\s+ago\b", re.I)
_LAST_RE = re.compile(r"\b(last|this|next)\s+(week|month|year|weekend)\b", re.I)
_REL_DAY_RE = re.compile(r"\b(yesterday|today|tomorrow)\b", re.I)
_MONTH_NAMES = "|".join(sorted(MONTHS, key=len, reverse=True))
_MONTH_YEAR_RE = re.compile(r"\b(?:in\s+)?(" + _MONTH_NAMES + r")\.?\s+(\d{4})\b", re.I)
_DAY_MONTH_YEAR_RE = re.compile(
    r"\b(\d{1,2})\s+(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?,?\s+(\d{4})\b", re.I
)
_YEAR_RE = re.compile(r"\bin\s+((?:19|20)\d{2})\b", re.I)


def resolve_temporal_expressions(text: str, reference: float) -> list[TimeWindow]:
    """Find dated phrases in ``text`` and resolve them against ``reference``.

    Parameters
    ----------
    text : str
        Query text such as ``"what did Mara do last week?"``.
    reference : float
        The "now" of the query, in epoch seconds.

    Returns
    -------
    list of TimeWindow
        One window per expression, in order of appearance.

    Examples
    --------
    >>> ref = parse_time("2023-05-20T12:00")
    >>> [w.expression for w in resolve_temporal_expressions("yesterday and in May 2023", ref)]
    ['yesterday', 'May 2023']
    >>> w = resolve_temporal_expressions("two days ago", ref)[0]
    >>> format_time(w.t0), format_time(w.t1)
    ('2023-05-18 00:00', '2023-05-19 00:00')
    """
    ref = datetime.fromtimestamp(reference, tz=timezone.utc)
    day0 = ref.replace(hour=0, minute=0, second=0, microsecond=0)
    found: list[tuple[int, TimeWindow]] = []

    for m in _REL_DAY_RE.finditer(text):
        offset = {"yesterday": -1, "today": 0, "tomorrow": 1}[m.group(1).lower()]
        start = day0 + timedelta(days=offset)
        found.append((m.start(), _window(start, start + timedelta(days=1), m.group(0))))
    for m in _AGO_RE.finditer(text):
        raw = m.group(1).lower()
        n = int(raw) if raw.isdigit() else _NUM_WORDS[raw]
        unit = m.group(2).lower()
        start, end = _shift(day0, unit, -n)
        found.append((m.start(), _window(start, end, m.group(0))))
    for m in _LAST_RE.finditer(text):
        step = {"last": -1, "this": 0, "next": 1}[m.group(1).lower()]
        unit = m.group(2).lower()
        if unit == "weekend":
            saturday = day0 - timedelta(days=(day0.weekday() - 5) % 7) + timedelta(weeks=step + (step >= 0))
            found.append((m.start(), _window(saturday, saturday + timedelta(days=2), m.group(0))))
            continue
        start, end = _period(day0, unit, step)
        found.append((m.start(), _window(start, end, m.group(0))))
    for m in _DAY_MONTH_YEAR_RE.finditer(text):
        start = datetime(int(m.group(3)), MONTHS[m.group(2).lower()], int(m.group(1)), tzinfo=timezone.utc)
        found.append((m.start(), _window(start, start + timedelta(days=1), m.group(0))))
    covered = [(m.start(), m.end()) for m in _DAY_MONTH_YEAR_RE.finditer(text)]
    for m in _MONTH_YEAR_RE.finditer(text):
        if any(a <= m.start() < b for a, b in covered):
            continue
        year, mon = int(m.group(2)), MONTHS[m.group(1).lower()]
        start = datetime(year, mon, 1, tzinfo=timezone.utc)
        end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=timezone.utc)
        found.append((m.start(), _window(start, end, f"{m.group(1)} {m.group(2)}")))
    for m in _YEAR_RE.finditer(text):
        year = int(m.group(1))
        found.append(
            (
                m.start(),
                _window(
                    datetime(year, 1, 1, tzinfo=timezone.utc), datetime(year + 1, 1, 1, tzinfo=timezone.utc), m.group(1)
                ),
            )
        )
    return [w for _, w in sorted(found, key=lambda p: p[0])]


def _window(start: datetime, end: datetime, expression: str) -> TimeWindow:
    return TimeWindow(_epoch(start), _epoch(end), expression)


def _shift(day0: datetime, unit: str, n: int) -> tuple[datetime, datetime]:
    """The day, week, month or year that lies ``n`` units from ``day0``."""
    if unit == "day":
        start = day0 + timedelta(days=n)
        return start, start + timedelta(days=1)
    if unit == "week":
        start = day0 + timedelta(weeks=n)
        return start - timedelta(days=3), start + timedelta(days=4)
    return _period(day0, unit, n)


def _period(day0: datetime, unit: str, step: int) -> tuple[datetime, datetime]:
    """The calendar week, month or year ``step`` periods from the one holding ``day0``."""
    if unit in ("week", "day"):
        monday = day0 - timedelta(days=day0.weekday()) + timedelta(weeks=step)
        return monday, monday + timedelta(weeks=1)
    if unit == "month":
        idx = day0.year * 12 + day0.month - 1 + step
        start = datetime(idx // 12, idx % 12 + 1, 1, tzinfo=timezone.utc)
        nxt = idx + 1
        return start, datetime(nxt // 12, nxt % 12 + 1, 1, tzinfo=timezone.utc)
    year = day0.year + step
    return datetime(year, 1, 1, tzinfo=timezone.utc), datetime(year + 1, 1, 1, tzinfo=timezone.utc)
