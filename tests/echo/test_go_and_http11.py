"""mirrorgate.gocompat (as the echo server uses it) and mirrorgate.echo.http11: Go-compatible helpers,
checked against cases from Go's own test tables."""

import pytest
from hypothesis import given, strategies as st

from mirrorgate.echo.http11 import (
    HttpDateCache,
    RequestTarget,
    canonical_header_key,
    is_token,
    reason_phrase,
    split_request_target,
    status_line,
)
from mirrorgate.gocompat import (
    DurationError as GoDurationError,
    parse_duration_ns as parse_go_duration_ns,
    parse_duration_seconds as parse_go_duration,
    parse_query as parse_go_query,
    url_unescape as go_unescape,
)

SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
MAX_NS = (1 << 63) - 1


def _bytes(raw: bytes) -> str:
    """A Go byte string as our str (invalid UTF-8 kept as surrogate escapes)."""
    return raw.decode("utf-8", "surrogateescape")


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("0", 0),
        ("5s", 5 * SECOND),
        ("30s", 30 * SECOND),
        ("1478s", 1478 * SECOND),
        ("-5s", -5 * SECOND),
        ("+5s", 5 * SECOND),
        ("-0", 0),
        ("+0", 0),
        ("5.0s", 5 * SECOND),
        ("5.6s", 5 * SECOND + 600_000_000),
        ("5.s", 5 * SECOND),
        (".5s", SECOND // 2),
        ("1.004s", SECOND + 4_000_000),
        ("100.00100s", 100 * SECOND + 1_000_000),
        ("10ns", 10),
        ("11us", 11_000),
        ("12\u00b5s", 12_000),
        ("12\u03bcs", 12_000),
        ("13ms", 13_000_000),
        ("15m", 15 * MINUTE),
        ("16h", 16 * HOUR),
        ("3h30m", 3 * HOUR + 30 * MINUTE),
        ("10.5s4m", 4 * MINUTE + 10 * SECOND + SECOND // 2),
        ("-2m3.4s", -(2 * MINUTE + 3 * SECOND + 400_000_000)),
        ("1h2m3s4ms5us6ns", HOUR + 2 * MINUTE + 3 * SECOND + 4_000_000 + 5_000 + 6),
        ("39h9m14.425s", 39 * HOUR + 9 * MINUTE + 14 * SECOND + 425_000_000),
        ("1m30s", 90 * SECOND),
        ("52763797000ns", 52763797000),
        ("0.3333333333333333333h", 20 * MINUTE),
        ("9007199254740993ns", (1 << 53) + 1),
        ("9223372036854775807ns", MAX_NS),
        ("9223372036854775.807us", MAX_NS),
        ("9223372036854.775807ms", MAX_NS),
        ("9223372036.854775807s", MAX_NS),
        ("-9223372036854775808ns", -(1 << 63)),
        ("-9223372036.854775808s", -(1 << 63)),
        ("0.100000000000000000000h", 6 * MINUTE),
        ("0.830103483285477580700h", 49 * MINUTE + 48 * SECOND + 372539827),
        ("000000000000000000000000000001s", SECOND),
    ],
)
def test_parse_go_duration_valid(text: str, nanos: int) -> None:
    assert parse_go_duration_ns(text) == nanos


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("3", 'time: missing unit in duration "3"'),
        ("-", 'time: invalid duration "-"'),
        ("s", 'time: invalid duration "s"'),
        (".", 'time: invalid duration "."'),
        ("-.", 'time: invalid duration "-."'),
        (".s", 'time: invalid duration ".s"'),
        ("+.s", 'time: invalid duration "+.s"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        ("1s ", 'time: unknown unit "s " in duration "1s "'),
        (_bytes(b"\x85\x85"), 'time: invalid duration "\\x85\\x85"'),
        (_bytes(b"\xffff"), 'time: invalid duration "\\xffff"'),
        (_bytes(b"hello \xffff world"), 'time: invalid duration "hello \\xffff world"'),
        ("\ufffd", 'time: invalid duration "\\xef\\xbf\\xbd"'),
        ('"1"', 'time: invalid duration "\\"1\\""'),
        ("9223372036854775810ns", 'time: invalid duration "9223372036854775810ns"'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        ("-9223372036854775809ns", 'time: invalid duration "-9223372036854775809ns"'),
        ("9223372036854776us", 'time: invalid duration "9223372036854776us"'),
        ("3000000h", 'time: invalid duration "3000000h"'),
        ("9223372036854775.808us", 'time: invalid duration "9223372036854775.808us"'),
        ("9223372036854.775808ms", 'time: invalid duration "9223372036854.775808ms"'),
        ("1" * 5000 + "s", 'time: invalid duration "' + "1" * 5000 + 's"'),
    ],
)
def test_parse_go_duration_errors_carry_go_messages(text: str, message: str) -> None:
    with pytest.raises(GoDurationError) as caught:
        parse_go_duration_ns(text)
    assert str(caught.value) == message


def test_parse_go_duration_returns_float_seconds() -> None:
    assert parse_go_duration("1m30s") == 90.0
    assert parse_go_duration("500ms") == 0.5
    assert parse_go_duration("-1.5us") == -0.0000015


@given(st.text(max_size=40))
def test_parse_go_duration_only_raises_go_duration_error(text: str) -> None:
    try:
        nanos = parse_go_duration_ns(text)
    except GoDurationError:
        return
    assert -(1 << 63) <= nanos <= MAX_NS


@given(st.integers(min_value=-(1 << 63), max_value=MAX_NS))
def test_parse_go_duration_nanoseconds_round_trip(nanos: int) -> None:
    assert parse_go_duration_ns(f"{nanos}ns") == nanos


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("a-b-c", "A-B-C"),
        ("a-1-c", "A-1-C"),
        ("User-Agent", "User-Agent"),
        ("uSER-aGENT", "User-Agent"),
        ("user-agent", "User-Agent"),
        ("USER-AGENT", "User-Agent"),
        ("x-request-id", "X-Request-Id"),
        ("foo-_bar", "Foo-_bar"),
        ("www-authenticate", "Www-Authenticate"),
        ("foo bar", "foo bar"),
        ("foo\nbar", "foo\nbar"),
        ("foo{bar", "foo{bar"),
        ("\u00fcser-agent", "\u00fcser-agent"),
        ("", ""),
    ],
)
def test_canonical_header_key_matches_go(name: str, canonical: str) -> None:
    assert canonical_header_key(name) == canonical


def test_is_token() -> None:
    assert is_token("X-Foo_bar.1!")
    assert not is_token("")
    assert not is_token("a b")
    assert not is_token("a:b")


def test_go_unescape_query_and_path() -> None:
    assert go_unescape("a+b%20c%2F", query=True) == "a b c/"
    assert go_unescape("a+b%2F", query=False) == "a+b/"
    assert go_unescape("%C3%A9", query=False) == "\xc3\xa9"
    for bad in ("%", "%4", "%zz", "a%g1"):
        with pytest.raises(ValueError, match="invalid URL escape"):
            go_unescape(bad, query=True)


def test_parse_go_query_skips_bad_pairs_like_go() -> None:
    query = parse_go_query("delay=1s&x=%zz&y;z=1&a=b+c&a=2&&flag&=v")

    assert query == {"delay": ["1s"], "a": ["b c", "2"], "flag": [""], "": ["v"]}


@pytest.mark.parametrize(
    ("target", "parts"),
    [
        ("/p?q=1", RequestTarget("", "/p", "q=1")),
        ("/p?q?r", RequestTarget("", "/p", "q?r")),
        ("/p", RequestTarget("", "/p", "")),
        ("*", RequestTarget("", "*", "")),
        ("http://user@h:8/p?q", RequestTarget("h:8", "/p", "q")),
        ("HTTPS://h?q", RequestTarget("h", "", "q")),
    ],
)
def test_split_request_target(target: str, parts: RequestTarget) -> None:
    assert split_request_target(target) == parts


def test_reason_phrases_and_status_lines() -> None:
    assert reason_phrase(418) == "I'm a teapot"
    assert reason_phrase(599) == "status code 599"
    assert status_line(503) == b"HTTP/1.1 503 Service Unavailable\r\n"
    assert status_line(200, "1.0") == b"HTTP/1.0 200 OK\r\n"
    assert status_line(299) == b"HTTP/1.1 299 status code 299\r\n"


def test_http_date_cache() -> None:
    cache = HttpDateCache()

    assert cache.get(0) == b"Thu, 01 Jan 1970 00:00:00 GMT"
    assert cache.get(0.9) is cache.get(0)
    assert cache.get(86400) == b"Fri, 02 Jan 1970 00:00:00 GMT"
