"""Masking the request's secrets in a mismatch record (``mirror/redact.py``): which values are
secrets, and every place a record could show one (bodies as text or bytes, cut bodies, JSON
members named like a redacted header, differences' values and paths)."""

import base64
import json

from mirrorgate.ir.table import MirrorCompare
from mirrorgate.mirror.board import body_text, redacted_names
from mirrorgate.mirror.compare import ALWAYS_REDACTED, REDACTED
from mirrorgate.mirror.redact import Redactor, secrets_of

NAMES = redacted_names(MirrorCompare(redact_headers=("X-Api-Key",)))
REQUEST = [
    ("Authorization", "Bearer TOPSECRET"),
    ("proxy-authorization", "Basic PROXYSECRET"),
    ("Cookie", 'sid=COOKIESECRET; theme="QUOTED"; flag'),
    ("X-Api-Key", "KEYSECRET"),
    ("X-Other", "not-a-secret"),
    ("Authorization", ""),
]


def redactor() -> Redactor:
    return Redactor(NAMES, secrets_of(REQUEST, NAMES))


def test_the_secrets_of_a_request() -> None:
    assert "proxy-authorization" in ALWAYS_REDACTED
    assert secrets_of(REQUEST, NAMES) == {
        "Bearer TOPSECRET",
        "TOPSECRET",
        "Basic PROXYSECRET",
        "PROXYSECRET",
        'sid=COOKIESECRET; theme="QUOTED"; flag',
        "COOKIESECRET",
        '"QUOTED"',
        "QUOTED",
        "KEYSECRET",
    }
    assert secrets_of([("Set-Cookie", "sid=S3T; Path=/; HttpOnly")], NAMES) == {"sid=S3T; Path=/; HttpOnly", "S3T"}


def test_bodies_are_masked_as_text_and_as_bytes() -> None:
    r = redactor()
    text = b"token TOPSECRET and cookie COOKIESECRET, key KEYSECRET, other not-a-secret"
    assert r.body(text, False, False) == (b"token [redacted] and cookie [redacted], key [redacted], other not-a-secret")
    binary = b"\xff\xfe" + b"KEYSECRET" + bytes(range(128, 256))  # shown as base64
    masked = r.body(binary, False, False)
    body, encoding = body_text(masked, False)
    assert encoding == "base64"
    assert b"KEYSECRET" not in base64.b64decode(body)
    assert r.body(b"x" * 10 + b"TOPSEC", True, False) == b"x" * 10 + REDACTED.encode()  # cut inside it
    assert r.body(b"x" * 10 + b"TOPSEC", False, False) == b"x" * 10 + b"TOPSEC"  # whole: not a secret


def test_json_members_named_like_a_redacted_header_are_masked() -> None:
    r = redactor()
    headers = {"AUTHORIZATION": ["Bearer ANOTHER"], "x-api-key": "k2", "Accept": ["*/*"]}
    doc = {"headers": headers, "n": [1, {"cookie": 1}]}
    masked = json.loads(r.body(json.dumps(doc).encode(), False, True))
    assert masked == {
        "headers": {"AUTHORIZATION": REDACTED, "x-api-key": REDACTED, "Accept": ["*/*"]},
        "n": [1, {"cookie": REDACTED}],
    }
    escaped = json.dumps({"v": 'sid=COOKIESECRET; theme="QUOTED"; flag'}).encode()  # quotes escaped
    assert b"QUOTED" not in r.body(escaped, False, True)


def test_differences_values_and_paths_are_masked() -> None:
    r = redactor()
    value = {"Authorization": "x", "echo": ["Bearer TOPSECRET", 1], "KEYSECRET": None}
    assert r.value(value) == {"Authorization": REDACTED, "echo": [REDACTED, 1], REDACTED: None}
    assert r.text("$.tokens['TOPSECRET']") == "$.tokens['[redacted]']"
    assert value["echo"] == ["Bearer TOPSECRET", 1]  # a copy: the difference is left as it was
