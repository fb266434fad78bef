"""MirrorPolicy through the file path: an ExtensionRef filter naming one becomes an IR ``Mirror``
with every field filled; its backendRef resolves like a RequestMirror's (ReferenceGrant from the
MirrorPolicy kind); an ExtensionRef that does not resolve keeps the 500 rule; the policy gets
Accepted and ResolvedRefs conditions."""

import pytest

from mirrorgate.ir.table import (
    PPM,
    HeaderModifier,
    Mirror,
    MirrorCompare,
    MirrorHost,
    SampleBy,
    UpstreamAddress,
)
from mirrorgate.model.meta import quantity_bytes
from mirrorgate.translate import TranslateResult
from mirrorgate.translate.status import MirrorPolicyStatus
from tests.support.manifests import (
    gateway_doc,
    grant_doc,
    mirror_policy_doc,
    only_route,
    route_condition,
    route_doc,
    service_docs,
    translate_text,
)

POLICY_REF = "{type: ExtensionRef, extensionRef: {group: mirrorgate.dev, kind: MirrorPolicy, name: shadow}}"
RULES = f"""  - filters:
    - {POLICY_REF}
    backendRefs: [{{name: primary, port: 8080}}]"""
FULL = """  backendRef: {name: shadow, port: 8080}
  fraction: {numerator: 1, denominator: 3}
  sampleBy: {header: X-User-Id, missing: Skip}
  host: {type: Literal, value: shadow.internal:8443}
  requestHeaderModifier:
    set: [{name: X-Shadow, value: "1"}, {name: x-shadow, value: "2"}]
    remove: [authorization]
  timeout: 1m30s
  maxBodyLag: 2Ki
  compare:
    headers: [Content-Type]
    ignoreHeaders: [X-Trace, date]
    ignorePaths: ["$.id", "$.items[*].updatedAt"]
    maxBodyBytes: 1024
    redactHeaders: [X-Api-Key, Cookie]
    keepMismatches: 5
"""
SERVICES = service_docs("primary", 9001) + service_docs("shadow", 9002)
BASE = gateway_doc() + SERVICES + route_doc(RULES)


def policy_conditions(result: TranslateResult, key: str = "MirrorPolicy infra/shadow") -> dict[str, tuple[str, str]]:
    status = result.statuses[key]
    assert isinstance(status, MirrorPolicyStatus)
    assert all(c.observed_generation == 1 for c in status.conditions)
    return {c.type: (c.status, c.reason) for c in status.conditions}


def test_every_field_of_the_policy_reaches_the_mirror() -> None:
    result = translate_text(BASE + mirror_policy_doc("shadow", FULL))
    assert only_route(result).action.filters.mirrors == (
        Mirror(
            name="httproute/infra/route/rule/0/mirror/0",
            backend="service/infra/shadow:8080",
            ppm=333_333,
            endpoints=(UpstreamAddress(address="127.0.0.1", port=9002),),
            policy="mirrorpolicy/infra/shadow",
            sample_by=SampleBy(source="Header", name="x-user-id", missing="Skip"),
            host=MirrorHost(type="Literal", value="shadow.internal:8443"),
            request_headers=HeaderModifier(set=(("X-Shadow", "1"),), remove=("authorization",)),
            timeout_ms=90_000,
            max_body_lag=2048,
            compare=MirrorCompare(
                headers=("content-type",),
                ignore_headers=(
                    *("date", "age", "expires", "connection", "keep-alive", "transfer-encoding"),
                    *("content-length", "x-request-id", "x-trace"),
                ),
                ignore_paths=("$.id", "$.items[*].updatedAt"),
                max_body_bytes=1024,
                redact_headers=("authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"),
                keep_mismatches=5,
            ),
        ),
    )
    assert route_condition(result)[:2] == ("True", "ResolvedRefs")
    assert policy_conditions(result) == {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs")}


def test_a_minimal_policy_mirrors_everything_with_the_gateway_defaults() -> None:
    result = translate_text(BASE + mirror_policy_doc("shadow", "  backendRef: {name: shadow, port: 8080}"))
    [m] = only_route(result).action.filters.mirrors
    assert (m.ppm, m.policy, m.sample_by, m.host, m.request_headers) == (PPM, "mirrorpolicy/infra/shadow", *[None] * 3)
    assert (m.timeout_ms, m.max_body_lag, m.compare) == (None, None, None)


@pytest.mark.parametrize(
    ("sample_by", "expected"),
    [
        ("{cookie: Session_ID}", SampleBy(source="Cookie", name="Session_ID")),
        ("{queryParam: User}", SampleBy(source="QueryParam", name="User")),
    ],
)
def test_cookie_and_query_names_keep_their_case(sample_by: str, expected: SampleBy) -> None:
    spec = f"  backendRef: {{name: shadow, port: 8080}}\n  percent: 7\n  sampleBy: {sample_by}"
    [m] = only_route(translate_text(BASE + mirror_policy_doc("shadow", spec))).action.filters.mirrors
    assert (m.sample_by, m.ppm) == (expected, 70_000)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *((1, 1), (1500, 1500), ("3", 3), ("1Ki", 1024), ("2Mi", 2 << 20), ("1Gi", 1 << 30)),
        *(("5k", 5000), ("2M", 2 * 10**6), ("1G", 10**9)),
    ],
)
def test_max_body_lag_in_bytes(value: int | str, expected: int) -> None:
    assert quantity_bytes(value) == expected


def test_policy_mirrors_count_with_request_mirrors_in_filter_order() -> None:
    rules = f"""  - filters:
    - {{type: RequestMirror, requestMirror: {{backendRef: {{name: primary, port: 8080}}}}}}
    - {POLICY_REF}
    backendRefs:
    - name: primary
      port: 8080
      filters: [{POLICY_REF}]"""
    text = gateway_doc() + SERVICES + route_doc(rules) + mirror_policy_doc("shadow", FULL)
    action = only_route(translate_text(text)).action
    assert [(m.name, m.policy) for m in action.filters.mirrors] == [
        ("httproute/infra/route/rule/0/mirror/0", ""),
        ("httproute/infra/route/rule/0/mirror/1", "mirrorpolicy/infra/shadow"),
    ]
    [backend] = action.backends
    assert [(m.name, m.policy) for m in backend.filters.mirrors] == [
        ("httproute/infra/route/rule/0/backend/0/mirror/0", "mirrorpolicy/infra/shadow")
    ]


CROSS = "  backendRef: {name: shadow, namespace: shadow, port: 8080}"
CROSS_BASE = (
    gateway_doc()
    + service_docs("primary", 9001)
    + service_docs("shadow", 9002, namespace="shadow")
    + route_doc(RULES)
    + mirror_policy_doc("shadow", CROSS)
)


def test_a_grant_from_the_mirror_policy_kind_admits_a_cross_namespace_backend() -> None:
    grant = grant_doc("shadow", "infra", from_kind="MirrorPolicy", from_group="mirrorgate.dev", to_name="shadow")
    result = translate_text(CROSS_BASE + grant)
    assert [m.backend for m in only_route(result).action.filters.mirrors] == ["service/shadow/shadow:8080"]
    assert policy_conditions(result)["ResolvedRefs"] == ("True", "ResolvedRefs")


@pytest.mark.parametrize(
    "grant",
    [
        pytest.param("", id="no-grant"),
        pytest.param(grant_doc("shadow", "infra"), id="grant-for-httproutes-only"),
        pytest.param(grant_doc("shadow", "infra", from_kind="MirrorPolicy"), id="kind-in-the-gateway-group"),
        pytest.param(
            grant_doc("shadow", "elsewhere", from_kind="MirrorPolicy", from_group="mirrorgate.dev"),
            id="another-namespace",
        ),
    ],
)
def test_without_a_grant_from_the_policy_the_mirror_is_dropped_and_the_primary_served(grant: str) -> None:
    result = translate_text(CROSS_BASE + grant)
    action = only_route(result).action
    assert action.filters.mirrors == ()
    assert (action.status, [b.name for b in action.backends]) == (0, ["service/infra/primary:8080"])
    status, reason, message = route_condition(result)
    assert (status, reason) == ("False", "RefNotPermitted")
    assert message.startswith("Mirror dropped: MirrorPolicy shadow: Backend ref to Service shadow/shadow not permitted")
    assert policy_conditions(result)["ResolvedRefs"] == ("False", "RefNotPermitted")


@pytest.mark.parametrize(
    ("backend_ref", "reason"),
    [
        ("{name: gone, port: 8080}", "BackendNotFound"),
        ("{name: shadow, port: 9999}", "BackendNotFound"),
        ("{group: example.com, kind: Bucket, name: shadow}", "InvalidKind"),
    ],
)
def test_an_unresolvable_backend_drops_only_the_mirror(backend_ref: str, reason: str) -> None:
    result = translate_text(BASE + mirror_policy_doc("shadow", f"  backendRef: {backend_ref}"))
    action = only_route(result).action
    assert (action.filters.mirrors, action.status) == ((), 0)
    assert [b.endpoints for b in action.backends] == [(UpstreamAddress(address="127.0.0.1", port=9001),)]
    assert route_condition(result)[:2] == ("False", reason)
    assert route_condition(result, "Accepted")[:2] == ("True", "Accepted")
    assert policy_conditions(result) == {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("False", reason)}


@pytest.mark.parametrize(
    ("policies", "ref", "message"),
    [
        pytest.param(
            "", POLICY_REF, "no MirrorPolicy infra/shadow (absent, or refused by admission)", id="no-such-policy"
        ),
        pytest.param(
            mirror_policy_doc("shadow", "  backendRef: {name: shadow, port: 8080}", namespace="shadow"),
            POLICY_REF,
            "no MirrorPolicy infra/shadow (absent, or refused by admission)",
            id="policy-in-another-namespace",
        ),
        pytest.param(
            mirror_policy_doc("shadow", "  backendRef: {name: shadow, port: 8080}"),
            "{type: ExtensionRef, extensionRef: {group: example.com, kind: MirrorPolicy, name: shadow}}",
            "ExtensionRef filter example.com/MirrorPolicy 'shadow' is not supported",
            id="another-group",
        ),
        pytest.param(
            mirror_policy_doc("shadow", "  backendRef: {name: shadow, port: 8080}"),
            "{type: ExtensionRef, extensionRef: {group: mirrorgate.dev, kind: Mirror, name: shadow}}",
            "ExtensionRef filter mirrorgate.dev/Mirror 'shadow' is not supported",
            id="another-kind",
        ),
    ],
)
def test_an_extension_ref_that_does_not_resolve_answers_500(policies: str, ref: str, message: str) -> None:
    rules = f"  - filters: [{ref}]\n    backendRefs: [{{name: primary, port: 8080}}]"
    result = translate_text(gateway_doc() + SERVICES + route_doc(rules) + policies)
    action = only_route(result).action
    assert (action.status, action.filters.mirrors) == (500, ())
    status, _, text = route_condition(result)
    assert status == "False"
    assert message in text
    assert "get 500" in text


def test_a_policy_beside_a_redirect_makes_the_rule_invalid() -> None:
    rules = f"""  - filters:
    - {POLICY_REF}
    - {{type: RequestRedirect, requestRedirect: {{hostname: example.com}}}}"""
    text = gateway_doc() + SERVICES + route_doc(rules) + mirror_policy_doc("shadow", FULL)
    result = translate_text(text)
    status, reason, message = route_condition(result, "Accepted")
    assert (status, reason) == ("False", "IncompatibleFilters")
    assert message.startswith("A MirrorPolicy ExtensionRef cannot be combined with RequestRedirect")
    assert result.table.servers[0].listeners[0].virtual_hosts == ()


def test_an_unused_policy_still_gets_its_status() -> None:
    text = gateway_doc() + SERVICES + mirror_policy_doc("idle", "  backendRef: {name: nowhere, port: 8080}")
    result = translate_text(text)
    assert policy_conditions(result, "MirrorPolicy infra/idle") == {
        "Accepted": ("True", "Accepted"),
        "ResolvedRefs": ("False", "BackendNotFound"),
    }
