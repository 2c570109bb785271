import pytest

from agentmem.errors import BadTimeError
from agentmem.timeparse import parse_time, resolve_temporal_expressions


@pytest.mark.parametrize(
    "value,expected",
    [
        (12, 12.0),
        ("12.5", 12.5),
        ("1970-01-01T00:01:00", 60.0),
        ("1970-01-01T01:00:00+01:00", 0.0),
        ("1970-01-02", 86400.0),
        ("2023-05-08T13:56:00Z", 1683554160.0),
        ("1:56 pm on 8 May, 2023", 1683554160.0),
        ("12:05 am on 1 January, 2024", 1704067500.0),
    ],
)
def test_parse_time_accepts_seconds_iso_and_locomo(value, expected):
    assert parse_time(value) == expected


@pytest.mark.parametrize("value", ["", "yesterday-ish", "2023-13-45", float("nan"), None, True, "5 Foo, 2023"])
def test_parse_time_rejects_with_field_name(value):
    with pytest.raises(BadTimeError, match="t_start"):
        parse_time(value, field="t_start")


def test_temporal_expressions_resolve_against_reference():
    ref = parse_time("2023-05-20T15:00")  # a Saturday
    got = {
        w.expression: (w.t0, w.t1)
        for w in resolve_temporal_expressions(
            "yesterday, last week, 3 days ago, last month, in 2022, on 7 May 2023", ref
        )
    }
    day = 86400.0
    assert got["yesterday"] == (parse_time("2023-05-19"), parse_time("2023-05-19") + day)
    assert got["last week"] == (parse_time("2023-05-08"), parse_time("2023-05-15"))
    assert got["3 days ago"] == (parse_time("2023-05-17"), parse_time("2023-05-18"))
    assert got["last month"] == (parse_time("2023-04-01"), parse_time("2023-05-01"))
    assert got["2022"] == (parse_time("2022-01-01"), parse_time("2023-01-01"))
    assert got["7 May 2023"] == (parse_time("2023-05-07"), parse_time("2023-05-08"))
    assert "May 2023" not in got  # inside "7 May 2023", not a second expression


def test_no_temporal_expression_in_plain_text():
    assert resolve_temporal_expressions("what colour is the lamp", 0.0) == []
