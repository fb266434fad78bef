"""Header and request-line injection through configuration: values that reach the wire from
filters (header modifiers, rewrites, redirects) must never carry a control character but HTAB
(RFC 9110 §5.5).

``load_paths`` is the file provider (YAML -> admission); the end-to-end test serves the same YAML
through the real gateway and looks at what the backend received.
"""

from pathlib import Path

import msgspec
import pytest

from mirrorgate.cli import _parser
from mirrorgate.model.httproute import HTTPRoute
from mirrorgate.providers.files import load_paths
from mirrorgate.providers.wire_safety import wire_problems
from mirrorgate.serve.config import RunConfig, load_table
from tests.hardening.conftest import HarnessFactory, gateway_yaml
from tests.support.client import Conn, Response

INJECT = "a\\r\\nX-Evil: 1"  # YAML double-quoted escapes: CR LF inside the value


def rule(filters: str, path: str = "/inj") -> str:
    backends = "" if "RequestRedirect" in filters else "    backendRefs: [{name: primary, port: 8080}]\n"
    return f"""  - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
    filters: [{filters}]
{backends}"""


HEADER_VALUE_CASES = {
    "request-set": '{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-A, value: "%s"}]}}',
    "request-add": '{type: RequestHeaderModifier, requestHeaderModifier: {add: [{name: X-A, value: "%s"}]}}',
    "response-set": '{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: X-A, value: "%s"}]}}',
    "request-set-nul": '{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-A, value: "a\\0b%s"}]}}',
}
NAME_AND_HOST_CASES = {
    "header-name-crlf": (
        '{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: "X-A\\r\\nX-Evil", value: v}]}}'
    ),
    "rewrite-hostname": '{type: URLRewrite, urlRewrite: {hostname: "%s"}}',
    "redirect-hostname": '{type: RequestRedirect, requestRedirect: {hostname: "%s"}}',
}
PATH_CASES = {
    "rewrite-full-path": '{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: "/x%s"}}}',
    "rewrite-prefix": '{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: "/x%s"}}}',
    "redirect-full-path": (
        '{type: RequestRedirect, requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: "/x%s"}}}'
    ),
}


def load_errors(tmp_path: Path, filters: str) -> list[str]:
    path = tmp_path / "inj.yaml"
    path.write_text(gateway_yaml(9001, 9002, rule(filters.replace("%s", INJECT))))
    return [str(e) for e in load_paths([str(path)]).errors]


@pytest.mark.parametrize("case", sorted(NAME_AND_HOST_CASES))
def test_crlf_rejected_in_names_hosts_and_paths(tmp_path: Path, case: str) -> None:
    errors = load_errors(tmp_path, NAME_AND_HOST_CASES[case])
    assert len(errors) == 1
    assert "HTTPRoute infra/route: spec.rules[1]" in errors[0]


@pytest.mark.parametrize("case", sorted(HEADER_VALUE_CASES))
def test_crlf_rejected_in_header_values(tmp_path: Path, case: str) -> None:
    errors = load_errors(tmp_path, HEADER_VALUE_CASES[case])
    assert len(errors) == 1
    assert ".value" in errors[0]


@pytest.mark.parametrize("case", sorted(PATH_CASES))
def test_crlf_rejected_in_rewritten_paths(tmp_path: Path, case: str) -> None:
    errors = load_errors(tmp_path, PATH_CASES[case])
    assert len(errors) == 1
    assert "spec.rules[1].filters[0]" in errors[0]


# every Latin-1 character, line and paragraph separators, a BOM and an astral character, each
# between "a" and an injected header line
INJECTED_VALUES = [f"a{chr(c)}X-Evil: 1" for c in range(0x100)] + [
    f"a{ch}X-Evil: 1" for ch in ("\u2028", "\u2029", "\ufeff", "\U0001f600")
]
MODIFIERS = {  # case -> (filter type, filter field, operation)
    "request-set": ("RequestHeaderModifier", "requestHeaderModifier", "set"),
    "request-add": ("RequestHeaderModifier", "requestHeaderModifier", "add"),
    "response-set": ("ResponseHeaderModifier", "responseHeaderModifier", "set"),
}


def yaml_string(value: str) -> str:
    """``value`` as a YAML double-quoted scalar: printable ASCII as is, everything else escaped."""
    return '"' + "".join(c if " " <= c <= "~" and c not in '\\"' else f"\\U{ord(c):08x}" for c in value) + '"'


def modifier_rule(case: str, value: str, path: str) -> str:
    kind, field, op = MODIFIERS[case]
    return rule(f"{{type: {kind}, {field}: {{{op}: [{{name: X-A, value: {yaml_string(value)}}}]}}}}", path)


def loads(value: str) -> bool:
    text = gateway_yaml(9001, 9002, modifier_rule("request-set", value, "/inj"))
    return not load_paths(["-"], stdin_text=text).errors


def routes_of(rules: list[str]) -> str:
    """HTTPRoutes holding ``rules``, 16 to a route (the CRD's limit)."""
    return "".join(
        f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: inj-{n}, namespace: infra}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
{"".join(rules[n : n + 16])}"""
        for n in range(0, len(rules), 16)
    )


async def get_each(port: int, targets: list[str]) -> list[Response | None]:
    """GET each target in turn, on one connection while the gateway keeps it open."""
    replies: list[Response | None] = []
    client = await Conn.open(port)
    try:
        for target in targets:
            await client.send(f"GET {target} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
            replies.append(reply := await client.read_reply())
            if reply is None or reply.header("connection") == "close":
                await client.close()
                client = await Conn.open(port)
    finally:
        await client.close()
    return replies


def has_control(value: str) -> bool:
    return any((c < " " and c != "\t") or c == "\x7f" for c in value)


async def test_header_value_injection_never_reaches_the_backend(make_harness: HarnessFactory) -> None:
    """Exactly the values with a control character other than HTAB are refused at load; every
    other value is served end to end and never puts an ``X-Evil`` header line on either wire."""
    accepted = [v for v in INJECTED_VALUES if loads(v)]
    assert [v for v in INJECTED_VALUES if v not in accepted] == [v for v in INJECTED_VALUES if has_control(v)]
    assert len(accepted) >= 0.8 * len(INJECTED_VALUES)
    cases = [(case, i, value) for case in MODIFIERS for i, value in enumerate(accepted)]
    harness = await make_harness(extra_docs=routes_of([modifier_rule(c, v, f"/inj/{c}/{i}/") for c, i, v in cases]))
    replies = await get_each(harness.port, [f"/inj/{case}/{i}/" for case, i, _ in cases])
    await harness.settle()
    assert b"\nx-evil" not in b"".join(harness.primary.raw).lower()
    for (case, i, _), reply in zip(cases, replies, strict=True):
        assert reply is not None, (case, accepted[i])
        assert reply.status == 200, (case, accepted[i], reply)
        if case == "response-set":
            assert reply.header("x-a") == accepted[i].encode().decode("latin-1"), reply
            assert reply.header("x-evil") is None, reply
    delivered = {s.target: s for s in harness.primary.seen if s.target.startswith("/inj/request-")}
    assert len(delivered) >= 0.8 * 2 * len(accepted)
    for target, seen in delivered.items():
        assert seen.header("x-a") == accepted[int(target.split("/")[3])].encode(), seen
        assert seen.header("x-evil") is None, seen


def test_translation_only_dials_configured_endpoints(tmp_path: Path) -> None:
    """SSRF via config: every address the table can dial comes from an EndpointSlice/Endpoints
    (or --endpoints); a Service's externalName, a hostname in a rewrite or a redirect never does."""
    extra = rule('{type: URLRewrite, urlRewrite: {hostname: "169.254.169.254"}}', "/meta") + rule(
        '{type: RequestRedirect, requestRedirect: {hostname: "169.254.169.254"}}', "/redir"
    )
    docs = """---
apiVersion: v1
kind: Service
metadata: {name: external, namespace: infra}
spec: {type: ExternalName, externalName: metadata.google.internal, ports: [{port: 80}]}
"""
    path = tmp_path / "ssrf.yaml"
    path.write_text(
        gateway_yaml(9001, 9002, extra, docs).replace(
            "- backendRefs: [{name: primary", "- backendRefs: [{name: external, port: 80}, {name: primary", 1
        )
    )
    table = load_table([str(path)], "127.0.0.1")
    addresses = set()
    for server in table.servers:
        for listener in server.listeners:
            for vhost in listener.virtual_hosts:
                for route in vhost.routes:
                    for backend in route.action.backends:
                        addresses |= {(e.address, e.port) for e in backend.endpoints}
                    for mirror in route.action.filters.mirrors:
                        addresses |= {(e.address, e.port) for e in mirror.endpoints}
    assert addresses == {("127.0.0.1", 9001), ("127.0.0.1", 9002)}


def test_admin_server_defaults_to_loopback() -> None:
    """The admin server (config dump, status, metrics) listens on loopback unless told otherwise."""
    assert RunConfig(paths=("x.yaml",)).admin == ("127.0.0.1", 9901)
    args = _parser().parse_args(["run", "-f", "x.yaml"])
    assert args.admin == "127.0.0.1:9901"


def test_lone_surrogate_header_value_is_refused_at_load() -> None:
    """A header value is sent UTF-8 encoded; a lone surrogate (YAML ``"\\ud800"``) cannot be, so it
    must be refused at load like CR, LF and NUL instead of failing when the table is compiled."""
    assert not loads("a\ud800b")


def test_unpaired_surrogate_is_refused_even_when_the_parser_lets_it_through() -> None:
    """libyaml refuses ``"\\ud800"``; a JSON object from the API server can carry one: the wire
    check refuses it whatever decoded the object."""
    body = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "r", "namespace": "default"},
        "spec": {
            "rules": [
                {
                    "filters": [
                        {
                            "type": "RequestHeaderModifier",
                            "requestHeaderModifier": {"set": [{"name": "X-A", "value": "a\ud800b"}]},
                        }
                    ]
                }
            ]
        },
    }
    problems = wire_problems(msgspec.convert(body, HTTPRoute))
    assert [p.path for p in problems] == ["spec.rules[0].filters[0].requestHeaderModifier.set[0].value"]
    assert "unpaired surrogates" in problems[0].message


@pytest.mark.parametrize(
    ("field", "value"),
    [("set", INJECT), ("add", INJECT), ("set", "a\\0b"), ("add", "a\\x7fb")],
)
def test_crlf_rejected_in_a_mirror_policy_header_value(tmp_path: Path, field: str, value: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        f"""apiVersion: mirrorgate.dev/v1alpha1
kind: MirrorPolicy
metadata: {{name: p, namespace: infra}}
spec:
  backendRef: {{name: primary, port: 8080}}
  requestHeaderModifier: {{{field}: [{{name: X-Ok, value: fine}}, {{name: X-A, value: "{value}"}}]}}
"""
    )
    [error] = [str(e) for e in load_paths([str(path)]).errors]
    assert error.startswith(f"{path}: MirrorPolicy infra/p: spec.requestHeaderModifier.{field}[1].value: Invalid value")
    assert "must not contain control characters other than HTAB" in error
