"""MirrorPolicy admission: every rule of ``providers/admission/mirrorpolicy.py`` with its exact path
and message. Each row is a policy (``spec`` overrides of a valid one) and the complete list of
``(path, message)`` pairs; messages are written out here so that a drift shows up as a failure."""

from typing import Any

import msgspec
import pytest

from mirrorgate.model.mirrorpolicy import MirrorPolicy
from mirrorgate.providers.admission import admit
from tests.providers.test_admission import DURATION_RE, GATE, HEADER_RE, OBJ

API = "mirrorgate.dev/v1alpha1"
HOST_RE = (
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
    r"(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?$"
)
QUANTITY_RE = r"^[1-9][0-9]*(Ki|Mi|Gi|k|M|G)?$"
JSON_PATH_RE = r"^\$(\.[A-Za-z_][A-Za-z0-9_-]*|\[([0-9]+|\*|'([^'\\]|\\.)*')\])*$"
BACKEND = {"name": "shadow", "port": 8080}
FULL: dict[str, Any] = {
    "backendRef": BACKEND,
    "percent": 50,
    "sampleBy": {"header": "x-user-id", "missing": "Skip"},
    "host": {"type": "Literal", "value": "shadow.internal:8080"},
    "requestHeaderModifier": {"set": [{"name": "x-shadow", "value": "1"}], "remove": ["authorization"]},
    "timeout": "2s",
    "maxBodyLag": "1Mi",
    "compare": {
        "headers": ["content-type"],
        "ignoreHeaders": ["x-trace"],
        "ignorePaths": ["$", "$.id", "$.items[*].updatedAt", "$['a b'][0]", "$.a-b._c"],
        "maxBodyBytes": 16 * 1024 * 1024,
        "redactHeaders": ["x-api-key"],
        "keepMismatches": 1000,
    },
}


def policy(**spec: Any) -> MirrorPolicy:
    body = {"backendRef": BACKEND, **spec}
    doc = {"apiVersion": API, "kind": "MirrorPolicy", "metadata": {"name": "p", "namespace": "shop"}, "spec": body}
    return msgspec.convert(doc, MirrorPolicy)


def errs(obj: MirrorPolicy) -> list[tuple[str, str]]:
    return [(e.path, e.message) for e in admit(obj)]


VALID = [
    pytest.param(FULL, id="every-field"),
    pytest.param({}, id="backend-only"),
    pytest.param({"fraction": {"numerator": 1}}, id="fraction-default-denominator"),
    pytest.param({"fraction": {"numerator": 3, "denominator": 3}}, id="fraction-all"),
    pytest.param({"percent": 0}, id="percent-0"),
    pytest.param({"sampleBy": {"cookie": "session_id"}}, id="cookie"),
    pytest.param({"sampleBy": {"queryParam": "user"}}, id="query"),
    pytest.param({"host": {"type": "Original"}}, id="host-original"),
    pytest.param({"host": {"type": "ShadowSuffix"}}, id="host-shadow"),
    pytest.param({"host": {"type": "Literal", "value": "a.b"}}, id="host-literal-no-port"),
    pytest.param({"maxBodyLag": 1}, id="lag-int"),
    pytest.param({"maxBodyLag": "65536"}, id="lag-digits"),
    pytest.param({"timeout": "59m59s"}, id="timeout"),
    pytest.param({"timeout": "1h"}, id="timeout-max"),
    pytest.param({"maxBodyLag": 1 << 30}, id="lag-int-max"),
    pytest.param({"maxBodyLag": "1073741824"}, id="lag-digits-max"),
    pytest.param({"maxBodyLag": "1Gi"}, id="lag-gi-max"),
    pytest.param({"maxBodyLag": "1024Mi"}, id="lag-mi-max"),
    pytest.param({"maxBodyLag": "1G"}, id="lag-g"),
    pytest.param({"compare": {}}, id="compare-defaults"),
]


@pytest.mark.parametrize("spec", VALID)
def test_valid_policies_are_admitted(spec: dict[str, Any]) -> None:
    assert errs(policy(**spec)) == []


def too_many(path: str, n: int, limit: int) -> tuple[str, str]:
    return (path, f"Too many: {n}: must have at most {limit} items")


LAG_MAX = ("spec.maxBodyLag", 'Invalid value: "": maxBodyLag must be at most 1Gi (1073741824 bytes)')
CASES = [
    pytest.param(
        {"percent": 10, "fraction": {"numerator": 1}},
        [("spec", OBJ + "Only one of percent or fraction may be specified in MirrorPolicy")],
        id="percent-and-fraction",
    ),
    pytest.param(
        {"percent": 101},
        [("spec.percent", "Invalid value: 101: spec.percent in body should be less than or equal to 100")],
        id="percent-above-100",
    ),
    pytest.param(
        {"percent": -1},
        [("spec.percent", "Invalid value: -1: spec.percent in body should be greater than or equal to 0")],
        id="percent-negative",
    ),
    pytest.param(
        {"fraction": {"numerator": 4, "denominator": 3}},
        [("spec.fraction", OBJ + "numerator must be less than or equal to denominator")],
        id="numerator-above-denominator",
    ),
    pytest.param(
        {"fraction": {"numerator": 0, "denominator": 0}},
        [
            (
                "spec.fraction.denominator",
                "Invalid value: 0: spec.fraction.denominator in body should be greater than or equal to 1",
            )
        ],
        id="denominator-0",
    ),
    pytest.param(
        {"backendRef": {"name": "shadow"}},
        [("spec.backendRef", OBJ + "Must have port for Service reference")],
        id="service-without-port",
    ),
    pytest.param(
        {"backendRef": {"name": "shadow", "port": 0}},
        [
            (
                "spec.backendRef.port",
                "Invalid value: 0: spec.backendRef.port in body should be greater than or equal to 1",
            )
        ],
        id="port-0",
    ),
    pytest.param(
        {"sampleBy": {}},
        [("spec.sampleBy", OBJ + "exactly one of header, cookie or queryParam must be set")],
        id="sample-by-nothing",
    ),
    pytest.param(
        {"sampleBy": {"header": "a", "cookie": "b"}},
        [("spec.sampleBy", OBJ + "exactly one of header, cookie or queryParam must be set")],
        id="sample-by-two",
    ),
    pytest.param(
        {"sampleBy": {"header": "x user"}},
        [
            (
                "spec.sampleBy.header",
                f"Invalid value: \"x user\": spec.sampleBy.header in body should match '{HEADER_RE}'",
            )
        ],
        id="header-name",
    ),
    pytest.param(
        {"sampleBy": {"cookie": "a=b"}},
        [("spec.sampleBy.cookie", f"Invalid value: \"a=b\": spec.sampleBy.cookie in body should match '{HEADER_RE}'")],
        id="cookie-name-not-a-token",
    ),
    pytest.param(
        {"sampleBy": {"queryParam": ""}},
        [
            (
                "spec.sampleBy.queryParam",
                'Invalid value: "": spec.sampleBy.queryParam in body should be at least 1 chars long',
            )
        ],
        id="query-name-empty",
    ),
    pytest.param(
        {"sampleBy": {"header": "a", "missing": "Drop"}},
        [("spec.sampleBy.missing", 'Unsupported value: "Drop": supported values: "Random", "Skip"'), GATE],
        id="missing-enum",
    ),
    pytest.param(
        {"host": {"type": "Rewrite"}},
        [
            ("spec.host.type", 'Unsupported value: "Rewrite": supported values: "Original", "ShadowSuffix", "Literal"'),
            GATE,
        ],
        id="host-type-enum",
    ),
    pytest.param(
        {"host": {"type": "Literal"}},
        [("spec.host", OBJ + "value must be set when type is Literal")],
        id="literal-without-value",
    ),
    pytest.param(
        {"host": {"type": "Original", "value": "a.b"}},
        [("spec.host", OBJ + "value must not be set unless type is Literal")],
        id="value-without-literal",
    ),
    pytest.param(
        {"host": {"type": "Literal", "value": "A.example:70000"}},
        [("spec.host.value", f"Invalid value: \"A.example:70000\": spec.host.value in body should match '{HOST_RE}'")],
        id="literal-not-a-hostname",
    ),
    pytest.param(
        {"requestHeaderModifier": {"set": [{"name": "a b", "value": "1"}, {"name": "c", "value": ""}]}},
        [
            (
                "spec.requestHeaderModifier.set[0].name",
                f"Invalid value: \"a b\": spec.requestHeaderModifier.set[0].name in body should match '{HEADER_RE}'",
            ),
            (
                "spec.requestHeaderModifier.set[1].value",
                'Invalid value: "": spec.requestHeaderModifier.set[1].value in body should be at least 1 chars long',
            ),
        ],
        id="header-modifier",
    ),
    pytest.param(
        {"requestHeaderModifier": {"remove": ["a", "a"]}},
        [("spec.requestHeaderModifier.remove[1]", 'Duplicate value: "a"')],
        id="header-modifier-remove-set",
    ),
    pytest.param(
        {"timeout": "2 seconds"},
        [
            ("spec.timeout", f"Invalid value: \"2 seconds\": spec.timeout in body should match '{DURATION_RE}'"),
            (
                "spec.timeout",
                'Invalid value: "string": time: unknown unit " seconds" in duration "2 seconds" '
                "evaluating rule: timeout must be greater than 0s",
            ),
            (
                "spec.timeout",
                'Invalid value: "string": time: unknown unit " seconds" in duration "2 seconds" '
                "evaluating rule: timeout must be at most 1h",
            ),
        ],
        id="timeout-not-a-duration",
    ),
    pytest.param(
        {"timeout": "1h0m1s"},
        [("spec.timeout", 'Invalid value: "string": timeout must be at most 1h')],
        id="timeout-over-1h",
    ),
    pytest.param(
        {"timeout": "99999h"},
        [("spec.timeout", 'Invalid value: "string": timeout must be at most 1h')],
        id="timeout-99999h",
    ),
    pytest.param(
        {"maxBodyLag": (1 << 30) + 1},
        [
            (
                "spec.maxBodyLag",
                "Invalid value: 1073741825: spec.maxBodyLag in body should be less than or equal to 1073741824",
            )
        ],
        id="lag-int-over-1gi",
    ),
    pytest.param({"maxBodyLag": "1073741825"}, [LAG_MAX], id="lag-digits-over-1gi"),
    pytest.param({"maxBodyLag": "1025Mi"}, [LAG_MAX], id="lag-mi-over-1gi"),
    pytest.param({"maxBodyLag": "2G"}, [LAG_MAX], id="lag-g-over-1gi"),
    pytest.param({"maxBodyLag": "99999Gi"}, [LAG_MAX], id="lag-99999gi"),
    pytest.param(
        {"timeout": "0s"},
        [("spec.timeout", 'Invalid value: "string": timeout must be greater than 0s')],
        id="timeout-0",
    ),
    pytest.param(
        {"maxBodyLag": 0},
        [("spec.maxBodyLag", "Invalid value: 0: spec.maxBodyLag in body should be greater than or equal to 1")],
        id="lag-0",
    ),
    pytest.param(
        {"maxBodyLag": "1MB"},
        [
            ("spec.maxBodyLag", f"Invalid value: \"1MB\": spec.maxBodyLag in body should match '{QUANTITY_RE}'"),
            LAG_MAX,
        ],
        id="lag-unit",
    ),
    pytest.param(
        {"maxBodyLag": "0Ki"},
        [
            ("spec.maxBodyLag", f"Invalid value: \"0Ki\": spec.maxBodyLag in body should match '{QUANTITY_RE}'"),
            LAG_MAX,
        ],
        id="lag-zero-quantity",
    ),
    pytest.param(
        {"compare": {"headers": ["ok", "bad name"], "ignoreHeaders": ["x", "x"], "redactHeaders": ["(c)"]}},
        [
            (
                "spec.compare.headers[1]",
                f"Invalid value: \"bad name\": spec.compare.headers[1] in body should match '{HEADER_RE}'",
            ),
            ("spec.compare.ignoreHeaders[1]", 'Duplicate value: "x"'),
            (
                "spec.compare.redactHeaders[0]",
                f"Invalid value: \"(c)\": spec.compare.redactHeaders[0] in body should match '{HEADER_RE}'",
            ),
        ],
        id="compare-header-names",
    ),
    pytest.param(
        {"compare": {"ignorePaths": ["id", "$.items[x]", "$..a", "$['a"]}},
        [
            (
                f"spec.compare.ignorePaths[{i}]",
                f"Invalid value: \"{p}\": spec.compare.ignorePaths[{i}] in body should match '{JSON_PATH_RE}'",
            )
            for i, p in enumerate(["id", "$.items[x]", "$..a", "$['a"])
        ],
        id="compare-json-paths",
    ),
    pytest.param(
        {"compare": {"maxBodyBytes": 0, "keepMismatches": 0}},
        [
            (
                "spec.compare.maxBodyBytes",
                "Invalid value: 0: spec.compare.maxBodyBytes in body should be greater than or equal to 1",
            ),
            (
                "spec.compare.keepMismatches",
                "Invalid value: 0: spec.compare.keepMismatches in body should be greater than or equal to 1",
            ),
        ],
        id="compare-minimums",
    ),
    pytest.param(
        {"compare": {"maxBodyBytes": 16 * 1024 * 1024 + 1, "keepMismatches": 1001}},
        [
            (
                "spec.compare.maxBodyBytes",
                "Invalid value: 16777217: spec.compare.maxBodyBytes in body should be less than or equal to 16777216",
            ),
            (
                "spec.compare.keepMismatches",
                "Invalid value: 1001: spec.compare.keepMismatches in body should be less than or equal to 1000",
            ),
        ],
        id="compare-maximums",
    ),
    pytest.param(
        {"compare": {"headers": [f"h{i}" for i in range(65)]}},
        [too_many("spec.compare.headers", 65, 64), GATE],
        id="compare-too-many-headers",
    ),
]


@pytest.mark.parametrize(("spec", "expected"), CASES)
def test_invalid_policies_get_apiserver_messages(spec: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert errs(policy(**spec)) == expected


def test_metadata_is_checked() -> None:
    doc = {"apiVersion": API, "kind": "MirrorPolicy", "metadata": {"name": "Bad_Name"}, "spec": {"backendRef": BACKEND}}
    [(path, message)] = errs(msgspec.convert(doc, MirrorPolicy))
    assert path == "metadata.name"
    assert message.startswith('Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain')
