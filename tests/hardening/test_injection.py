"""Header and request-line injection through configuration: values that reach the wire from
filters (header modifiers, rewrites, redirects) must never carry CR, LF or NUL.

``load_paths`` is the file provider (YAML -> admission); the end-to-end test serves the same YAML
through the real gateway and looks at what the backend received.
"""

from pathlib import Path

import pytest

from mirrorgate.cli import _parser
from mirrorgate.providers.files import load_paths
from mirrorgate.serve.config import RunConfig, load_table
from tests.hardening.conftest import HarnessFactory, RawClient, gateway_yaml

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


async def test_header_value_injection_never_reaches_the_backend(make_harness: HarnessFactory, tmp_path: Path) -> None:
    filters = HEADER_VALUE_CASES["request-set"].replace("%s", INJECT)
    try:
        harness = await make_harness(extra_rules=rule(filters))
    except Exception:  # rejected at load: the injection is impossible, which is what we want
        return
    client = await RawClient.open(harness.port)
    try:
        await client.send(b"GET /inj HTTP/1.1\r\nHost: a\r\n\r\n")
        await client.read_reply()
    finally:
        await client.close()
    await harness.settle()
    names = [n.lower() for s in harness.primary.seen for n, _ in s.headers]
    assert b"x-evil" not in names


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
