"""``mirrorgate.gocompat``: each helper against the values Go's standard library gives.

The expected values follow Go's documented behaviour and source (``time.ParseDuration``,
``strconv.Quote``, ``encoding/json``, ``regexp``, ``net.ParseIP``); they are written out
literally so that a drift in the module shows up as a failure.
"""

import ast
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from mirrorgate import gocompat
from mirrorgate.gocompat import (
    DurationError,
    decode_utf8,
    ip_to4,
    json_marshal,
    json_string,
    parse_duration_ns,
    parse_duration_seconds,
    parse_ip,
    quote,
    re2_to_python,
    time_quote,
)

MAX_INT64 = (1 << 63) - 1


def test_gocompat_is_a_leaf_of_the_standard_library() -> None:
    tree = ast.parse(Path(gocompat.__file__).read_text())
    modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert {m.split(".")[0] for m in modules} <= sys.stdlib_module_names


# --- time.ParseDuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("1h2m3.5s", 3_723_500_000_000),
        ("-1.5h", -5_400_000_000_000),
        (".5s", 500_000_000),
        ("1.s", 1_000_000_000),  # digits before the dot are enough
        ("0", 0),
        ("+0", 0),
        ("-0", 0),
        ("0s", 0),
        ("300ms", 300_000_000),
        ("1us", 1_000),
        ("1\u00b5s", 1_000),  # MICRO SIGN
        ("1\u03bcs", 1_000),  # GREEK SMALL LETTER MU
        ("1ns1ns", 2),  # units may repeat
        ("1.5ns", 1),  # the fraction truncates
        ("9223372036854775807ns", MAX_INT64),
        ("-9223372036854775808ns", -(1 << 63)),
        ("2562047h", 2562047 * 3_600_000_000_000),
        # leadingFraction keeps the first 19 digits and drops the rest (it would overflow).
        ("0.1234567890123456789012345s", 123_456_789),
    ],
)
def test_parse_duration_ns(text: str, nanos: int) -> None:
    assert parse_duration_ns(text) == nanos


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("1", 'time: missing unit in duration "1"'),
        ("1h1.5", 'time: missing unit in duration "1h1.5"'),
        ("1x", 'time: unknown unit "x" in duration "1x"'),
        ("1S", 'time: unknown unit "S" in duration "1S"'),
        ("-", 'time: invalid duration "-"'),
        (".s", 'time: invalid duration ".s"'),
        ("s", 'time: invalid duration "s"'),
        (" 1s", 'time: invalid duration " 1s"'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        ("2562048h", 'time: invalid duration "2562048h"'),
        ("99999999999999999999s", 'time: invalid duration "99999999999999999999s"'),
        ("5000000h5000000h", 'time: invalid duration "5000000h5000000h"'),
        ("1\u00e9", 'time: unknown unit "\\xc3\\xa9" in duration "1\\xc3\\xa9"'),
        ('"\t', 'time: invalid duration "\\"\\x09"'),
        ("\udcff", 'time: invalid duration "\\xff"'),  # a raw byte, carried as a surrogate escape
    ],
)
def test_parse_duration_errors_carry_go_messages(text: str, message: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration_ns(text)
    assert str(caught.value) == message


def test_parse_duration_seconds() -> None:
    assert parse_duration_seconds("1m30s") == 90.0
    assert parse_duration_seconds("-1.5us") == -0.0000015


@given(st.text(alphabet="0123456789.+-hmnsuµ", max_size=12))
def test_parse_duration_only_raises_duration_error(text: str) -> None:
    try:
        nanos = parse_duration_ns(text)
    except DurationError:
        return
    assert -(1 << 63) <= nanos <= MAX_INT64


# --- strconv.Quote and time.quote --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("plain", '"plain"'),
        ('a"b\\c', '"a\\"b\\\\c"'),
        ("\a\b\f\n\r\t\v", '"\\a\\b\\f\\n\\r\\t\\v"'),
        ("\x00\x1f\x7f", '"\\x00\\x1f\\x7f"'),
        ("\u00e9\u4e16", '"\u00e9\u4e16"'),  # printable runes stay
        ("\u00a0\u2028", '"\\u00a0\\u2028"'),  # not printable in Go's sense
        ("\U0001f600", '"\U0001f600"'),
        ("\U000e0001", '"\\U000e0001"'),
    ],
)
def test_quote_is_strconv_quote(text: str, quoted: str) -> None:
    assert quote(text) == quoted


def test_time_quote_writes_bytes_of_non_ascii_and_controls() -> None:
    assert time_quote('a"\\\u00e9\t') == '"a\\"\\\\\\xc3\\xa9\\x09"'
    assert time_quote("\ud800") == '"\\xed\\xa0\\x80"'  # a lone surrogate that is not a byte escape


# --- encoding/json -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("plain ascii ~", '"plain ascii ~"'),
        ("<a&b>", '"\\u003ca\\u0026b\\u003e"'),
        ("\u2028\u2029", '"\\u2028\\u2029"'),
        ('q"\\', '"q\\"\\\\"'),
        ("\n\r\t\b\f", '"\\n\\r\\t\\b\\f"'),  # Go 1.22+ writes \b and \f short
        ("\x01\x1f\x7f", '"\\u0001\\u001f\x7f"'),  # DEL is not escaped
        ("\u00e9\U0001f600", '"\u00e9\U0001f600"'),  # non-ASCII is written as UTF-8
    ],
)
def test_json_string_is_go_marshal_of_a_string(text: str, encoded: str) -> None:
    assert json_string(text) == encoded
    assert json_marshal(text) == encoded


def test_json_marshal_is_compact_with_sorted_keys() -> None:
    assert json_marshal({"b": 1, "a": [True, None, "<"]}) == '{"a":[true,null,"\\u003c"],"b":1}'
    assert json_marshal({"name": "x"}) == '{"name":"x"}'
    assert json_marshal(["10.0.0.1", "None"]) == '["10.0.0.1","None"]'


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"plain", "plain"),
        (b"a\xffb", "a\ufffdb"),
        (b"\xe2\x82A", "\ufffd\ufffdA"),  # each byte of a cut-short sequence is one U+FFFD
        (b"\xed\xa0\x80", "\ufffd\ufffd\ufffd"),  # an encoded surrogate is invalid UTF-8
        (b"\xc3\xa9\xef\xbf\xbd", "\u00e9\ufffd"),
    ],
)
def test_decode_utf8_replaces_each_invalid_byte(raw: bytes, text: str) -> None:
    assert decode_utf8(raw) == text


# --- regexp (RE2) ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "translated"),
    [
        ("^a$", "^a\\Z"),
        ("^$|^b$", "^\\Z|^b\\Z"),
        ("[$]", "[$]"),
        ("[a$]$", "[a$]\\Z"),
        ("\\$", "\\$"),
        ("a\\\\$", "a\\\\\\Z"),
    ],
)
def test_re2_to_python(source: str, translated: str) -> None:
    assert re2_to_python(source) == translated


def test_re2_dollar_is_end_of_text_only() -> None:
    assert re.search("^a$", "a\n")
    assert not re.search(re2_to_python("^a$"), "a\n")
    assert re.search(re2_to_python("b$"), "ab")  # MatchString is a search


# --- net.ParseIP (legacy) and IP.To4 -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "packed"),
    [
        ("10.1.2.3", bytes([10, 1, 2, 3])),
        ("010.001.1.1", bytes([10, 1, 1, 1])),  # leading zeros are decimal, not octal
        ("::1", bytes(15) + b"\x01"),
        ("::ffff:1.2.3.4", bytes(10) + b"\xff\xff" + bytes([1, 2, 3, 4])),
        ("::ffff:001.2.3.4", bytes(10) + b"\xff\xff" + bytes([1, 2, 3, 4])),
        ("", None),
        ("1.2.3", None),
        ("256.1.1.1", None),
        ("1.2.3.4:80", None),
        ("fe80::1%eth0", None),
        ("\u0661.2.3.4", None),  # ARABIC-INDIC DIGIT ONE is not an ASCII digit
        ("example.com", None),
    ],
)
def test_parse_ip(text: str, packed: bytes | None) -> None:
    assert parse_ip(text) == packed


def test_ip_to4() -> None:
    assert ip_to4(bytes([1, 2, 3, 4])) == bytes([1, 2, 3, 4])
    assert ip_to4(bytes(10) + b"\xff\xff" + bytes([1, 2, 3, 4])) == bytes([1, 2, 3, 4])
    assert ip_to4(bytes(15) + b"\x01") is None
