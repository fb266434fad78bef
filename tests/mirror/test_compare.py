"""The pure comparison of two responses (``mirror/compare.py``): examples for each rule, and
Hypothesis properties over arbitrary JSON documents and header lists."""

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from mirrorgate.ir.table import MirrorCompare
from mirrorgate.mirror.compare import (
    ALWAYS_REDACTED,
    DEFAULT_IGNORED,
    MAX_DIFFERENCES,
    MAX_JSON_BYTES,
    MAX_JSON_NODES,
    Difference,
    Side,
    compare,
    compare_headers,
    format_path,
    is_json,
    json_differences,
    parse_path,
    shown,
    walk,
)
from mirrorgate.model.mirrorpolicy import MirrorCompareSpec
from mirrorgate.providers.admission.mirrorpolicy import JSON_PATH
from mirrorgate.translate import mirrorpolicy

DEFAULT = MirrorCompare()
JSON_TYPE = (("Content-Type", "application/json; charset=utf-8"),)


def side(
    body: bytes = b"", *, status: int = 200, headers: tuple[tuple[str, str], ...] = JSON_TYPE, keep: int | None = None
) -> Side:
    kept = body if keep is None else body[:keep]
    return Side(
        status=status,
        headers=headers,
        body=kept,
        length=len(body),
        digest=hashlib.blake2b(body, digest_size=16).hexdigest(),
    )


# --- status and headers ------------------------------------------------------------------------


def test_status_code_and_class() -> None:
    assert compare(side(status=200), side(status=201), DEFAULT) == [
        Difference(kind="status", primary=200, mirror=201, detail="code")
    ]
    assert compare(side(status=200), side(status=500), DEFAULT) == [
        Difference(kind="status", primary=200, mirror=500, detail="class")
    ]


def test_headers_case_insensitive_joined_and_ignored_by_default() -> None:
    a = (("X-A", "1"), ("x-a", "2"), ("Date", "today"), ("X-Request-Id", "r1"))
    b = (("x-a", "1, 2"), ("date", "tomorrow"), ("x-request-id", "r2"))
    assert compare_headers(a, b, DEFAULT) == []
    assert compare_headers(a, (("x-a", "2, 1"),), DEFAULT) == [
        Difference(kind="header", name="x-a", primary="1, 2", mirror="2, 1")
    ]


def test_headers_listed_or_ignored() -> None:
    a = (("x-a", "1"), ("x-b", "1"), ("x-trace", "t1"))
    b = (("x-a", "2"), ("x-c", "1"), ("x-trace", "t2"))
    only_a = compare_headers(a, b, MirrorCompare(headers=("X-A",)))
    assert [d.name for d in only_a] == ["x-a"]
    rest = compare_headers(a, b, MirrorCompare(ignore_headers=("x-trace",)))
    assert [(d.name, d.absent) for d in rest] == [("x-a", None), ("x-b", "mirror"), ("x-c", "primary")]


# --- bodies ------------------------------------------------------------------------------------


def test_json_bodies_compare_by_member_with_ignored_paths() -> None:
    a = json.dumps({"id": 1, "items": [{"at": 1, "n": "x"}, {"at": 2, "n": "y"}], "k": {"a b": 1}}).encode()
    b = json.dumps({"id": 2, "items": [{"at": 9, "n": "x"}, {"at": 8, "n": "z"}], "k": {"a b": 2}}, indent=2).encode()
    diffs = compare(side(a), side(b), MirrorCompare(ignore_paths=("$.items[*].at",)))
    assert [(d.path, d.primary, d.mirror) for d in diffs] == [
        ("$.id", 1, 2),
        ("$.items[1].n", "y", "z"),
        ("$.k['a b']", 1, 2),
    ]
    assert compare(side(a), side(b), MirrorCompare(ignore_paths=("$.id", "$.items", "$['k']"))) == []


def test_json_members_present_on_one_side_and_array_lengths() -> None:
    diffs = json_differences({"a": [1, 2, 3], "b": 1}, {"a": [1], "c": None})
    assert [(d.path, d.absent, d.primary, d.mirror) for d in diffs] == [
        ("$.a[1]", "mirror", 2, None),
        ("$.a[2]", "mirror", 3, None),
        ("$.b", "mirror", 1, None),
        ("$.c", "primary", None, None),
    ]


def test_json_numbers_by_value_booleans_never_numbers() -> None:
    assert json_differences({"n": 1}, {"n": 1.0}) == []
    assert [d.path for d in json_differences({"n": 1}, {"n": True})] == ["$.n"]
    assert [d.path for d in json_differences([0], [False])] == ["$[0]"]
    assert [d.path for d in json_differences({"n": "1"}, {"n": 1})] == ["$.n"]
    assert [d.path for d in json_differences({"o": {}}, {"o": []})] == ["$.o"]


def test_non_json_and_truncated_bodies_compare_by_digest_and_length() -> None:
    text = (("content-type", "text/plain"),)
    assert compare(side(b"abc", headers=text), side(b"abc", headers=text), DEFAULT) == []
    (d,) = compare(side(b"abc", headers=text), side(b"abd", headers=text), DEFAULT)
    assert d.kind == "body"
    assert d.detail == "bytes"
    assert d.primary["length"] == d.mirror["length"] == 3
    # JSON, but longer than kept: the whole body's digest decides, never the kept prefix
    same_prefix_a, same_prefix_b = b'{"a": 1, "b": 2}', b'{"a": 1, "b": 3}'
    (d,) = compare(side(same_prefix_a, keep=8), side(same_prefix_b, keep=8), DEFAULT)
    assert d.detail == "bytes"
    assert compare(side(same_prefix_a, keep=8), side(same_prefix_a, keep=8), DEFAULT) == []
    # the kept prefixes are the same JSON document, the whole bodies are not the same bytes
    (d,) = compare(side(b'{"a": 1}  [', keep=8), side(b'{"a": 1}  {', keep=8), DEFAULT)
    assert d.detail == "bytes"
    # one side not JSON (type or syntax): bytes
    (d,) = compare(side(b'{"a":1}'), side(b'{"a":1', headers=JSON_TYPE), DEFAULT)
    assert d.detail == "bytes"


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("application/problem+json", True),
        ("application/vnd.api+json ; x=1", True),
        ("text/json", False),
        ("application/jsonx", False),
        ("+json", False),
        (None, False),
    ],
)
def test_is_json(content_type: str | None, expected: bool) -> None:
    assert is_json(content_type) is expected


def test_differences_are_bounded_and_values_summarised() -> None:
    many = json_differences(list(range(1000)), list(range(1, 1001)))
    assert len(many) == MAX_DIFFERENCES
    big = "x" * 1000
    assert shown(big) == "<string: 1002 bytes>"
    assert shown({"a": big}) == "<object: 1008 bytes>"
    assert shown([1, 2]) == [1, 2]


def test_deep_nesting_needs_no_recursion() -> None:
    a: Any = 1
    b: Any = 2
    for _ in range(5000):
        a, b = [a], [b]
    (d,) = json_differences(a, b)
    assert d.path == "$" + "[0]" * 5000


# --- paths -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("$", ()),
        ("$.a.b", (("key", "a"), ("key", "b"))),
        ("$.items[*].updatedAt", (("key", "items"), ("any", None), ("key", "updatedAt"))),
        ("$['a key'][0]", (("key", "a key"), ("index", 0))),
        ('$["x]y"]', (("key", "x]y"),)),
        ("$['it\\'s']", (("key", "it's"),)),
        ("$.*", (("any", None),)),
    ],
)
def test_parse_path(text: str, segments: tuple[Any, ...]) -> None:
    assert parse_path(text) == segments


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a.b", "must start with '$'"),
        ("$.", "expected a member name at offset 2"),
        ("$[x]", "'x' is not an index"),
        ("$['a'", "never closed"),
        ("$a", "unexpected 'a' at offset 1"),
        ("$[-1]", "'-1' is not an index"),
    ],
)
def test_parse_path_errors_name_the_path(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="invalid JSON path") as info:
        parse_path(text)
    assert repr(text) in str(info.value)
    assert message in str(info.value)


# --- properties --------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
documents = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=30,
)
keys = st.text(max_size=6)


@settings(max_examples=200, deadline=None)
@given(documents)
def test_a_document_equals_itself_and_its_reserialisation(doc: Any) -> None:
    encoded = json.dumps(doc).encode()
    assert compare(side(encoded), side(json.dumps(doc, indent=3, sort_keys=True).encode()), DEFAULT) == []


@settings(max_examples=200, deadline=None)
@given(documents, documents)
def test_differences_are_symmetric_and_empty_iff_equal(a: Any, b: Any) -> None:
    ab = json_differences(a, b, limit=10_000)
    ba = json_differences(b, a, limit=10_000)
    assert [(d.path, d.primary, d.mirror) for d in ab] == [(d.path, d.mirror, d.primary) for d in ba]
    swap = {"primary": "mirror", "mirror": "primary", None: None}
    assert [d.absent for d in ab] == [swap[d.absent] for d in ba]
    assert (not ab) == _same(a, b)


def _same(a: Any, b: Any) -> bool:
    """JSON equality with booleans distinct from numbers (the module's rule 3)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


@settings(max_examples=200, deadline=None)
@given(documents, documents)
def test_ignoring_every_reported_path_leaves_nothing(a: Any, b: Any) -> None:
    diffs = json_differences(a, b, limit=10_000)
    paths = [parse_path(d.path) for d in diffs if d.path is not None]
    assert json_differences(a, b, paths, limit=10_000) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=6) | st.integers(0, 50), max_size=6))
def test_format_and_parse_path_round_trip(segments: list[str | int]) -> None:
    parsed = parse_path(format_path(segments))
    assert [v for _, v in parsed] == segments
    assert [k for k, _ in parsed] == ["index" if isinstance(s, int) else "key" for s in segments]


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(keys, documents, min_size=1, max_size=5), documents, st.data())
def test_a_changed_member_is_reported_at_its_path_unless_ignored(
    doc: dict[str, Any], new: Any, data: st.DataObject
) -> None:
    key = data.draw(st.sampled_from(sorted(doc)))
    changed = {**doc, key: new}
    diffs = json_differences(doc, changed, limit=10_000)
    path = format_path([key])
    assert all(d.path is not None and d.path.startswith(path) for d in diffs)
    assert bool(diffs) != _same(doc[key], new)
    assert json_differences(doc, changed, [parse_path(path)]) == []
    assert json_differences(doc, changed, [parse_path("$.*")]) == []


header_lists = st.lists(
    st.tuples(st.sampled_from(["X-A", "x-a", "X-B", "x-c", "Date"]), st.text("abc ", max_size=4)), max_size=6
)


@settings(max_examples=200, deadline=None)
@given(header_lists, header_lists)
def test_header_differences_are_symmetric_and_name_lower_case(
    a: list[tuple[str, str]], b: list[tuple[str, str]]
) -> None:
    ab = compare_headers(a, b, DEFAULT)
    ba = compare_headers(b, a, DEFAULT)
    assert [(d.name, d.primary, d.mirror) for d in ab] == [(d.name, d.mirror, d.primary) for d in ba]
    assert all(d.name == d.name.lower() and d.name != "date" for d in ab)  # type: ignore[union-attr]
    assert compare_headers(a, list(a), DEFAULT) == []


@settings(max_examples=300, deadline=None)
@given(st.from_regex(JSON_PATH.regex, fullmatch=True))
def test_every_path_admission_accepts_parses(text: str) -> None:
    """MirrorPolicy admission's ``ignorePaths`` pattern and ``parse_path`` agree: what one lets
    through the other reads, and reads back the same once formatted."""
    segments = parse_path(text)
    concrete = [v for k, v in segments if k != "any"]
    if all(k != "any" for k, _ in segments):
        assert parse_path(format_path(concrete)) == segments  # type: ignore[arg-type]


def test_defaults_agree_with_the_mirror_policy_translation() -> None:
    """The translator fills the IR with the same defaults the comparison always applies."""
    translated = mirrorpolicy._compare(MirrorCompareSpec())
    assert set(translated.ignore_headers) == DEFAULT_IGNORED
    assert set(translated.redact_headers) == ALWAYS_REDACTED


# --- bounded work (rules 3 and 4) ---------------------------------------------------------------


def big_json(n: int, last: int) -> bytes:
    return json.dumps({"items": [*range(n), last]}).encode()


def test_json_longer_than_the_limit_compares_by_bytes_and_says_so() -> None:
    n = MAX_JSON_BYTES // 5
    a, b = big_json(n, 1), big_json(n, 2)
    assert len(a) > MAX_JSON_BYTES
    settings = MirrorCompare(max_body_bytes=4 * MAX_JSON_BYTES)
    (d,) = compare(side(a), side(b), settings)
    assert (d.kind, d.detail, d.path) == ("body", "bytes", None)
    assert d.note == f"too large to compare field by field: longer than {MAX_JSON_BYTES} bytes"
    assert d.primary == {"length": len(a), "digest": hashlib.blake2b(a, digest_size=16).hexdigest()}
    assert compare(side(a), side(a), settings) == []  # the same bytes: equal, nothing parsed
    small = big_json(10, 1)
    (d,) = compare(side(small), side(big_json(10, 2)), settings)
    assert (d.detail, d.path, d.note) == ("json", "$.items[10]", None)


def test_a_walk_stops_at_the_node_cap_and_falls_back_to_bytes() -> None:
    n = MAX_JSON_NODES + 5_000
    a, b = big_json(n, 1), big_json(n, 2)
    assert len(a) <= MAX_JSON_BYTES  # small enough to parse, too many values to walk
    diffs = compare(side(a), side(b), MirrorCompare(max_body_bytes=MAX_JSON_BYTES))
    (d,) = diffs  # the change sits past the cap: found by bytes only
    assert d.detail == "bytes"
    assert d.note == f"too large to compare field by field: more than {MAX_JSON_NODES} JSON values"
    out, complete = walk(list(range(100)), [*range(99), -1], max_nodes=50)
    assert (out, complete) == ([], False)
    out, complete = walk([-1, *range(1, 100)], list(range(100)), max_nodes=50)
    assert ([x.path for x in out], complete) == (["$[0]"], False)
    out, complete = walk(list(range(100)), [*range(99), -1], max_nodes=200)
    assert ([x.path for x in out], complete) == (["$[99]"], True)
