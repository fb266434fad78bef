"""A RequestMirror filter's backendRef in another namespace needs a ReferenceGrant in the target
namespace, from HTTPRoute (of the route's namespace) to Service (all, or the one named). Without
one the mirror is dropped, the route reports ResolvedRefs=False/RefNotPermitted and still serves
its primary backend (Gateway API ``HTTPRequestMirrorFilter.backendRef``, GEP-709)."""

import pytest

from tests.support.manifests import (
    gateway_doc,
    grant_doc,
    only_route,
    route_condition,
    route_doc,
    service_docs,
    translate_text,
)

RULES = """  - filters:
    - {type: RequestMirror, requestMirror: {backendRef: {name: shadow, namespace: shadow, port: 8080}}}
    backendRefs: [{name: primary, port: 8080}]"""
BASE = (
    gateway_doc() + service_docs("primary", 9001) + service_docs("shadow", 9002, namespace="shadow") + route_doc(RULES)
)


def test_a_grant_admits_the_mirror() -> None:
    result = translate_text(BASE + grant_doc("shadow", "infra"))
    r = only_route(result)
    assert [m.backend for m in r.action.filters.mirrors] == ["service/shadow/shadow:8080"]
    assert [(e.address, e.port) for m in r.action.filters.mirrors for e in m.endpoints] == [("127.0.0.1", 9002)]
    assert route_condition(result)[:2] == ("True", "ResolvedRefs")


def test_a_grant_naming_the_service_admits_the_mirror() -> None:
    result = translate_text(BASE + grant_doc("shadow", "infra", to_name="shadow"))
    assert len(only_route(result).action.filters.mirrors) == 1
    assert route_condition(result)[:2] == ("True", "ResolvedRefs")


@pytest.mark.parametrize(
    "grant",
    [
        pytest.param("", id="no-grant"),
        pytest.param(grant_doc("shadow", "infra", from_kind="Gateway"), id="from-another-kind"),
        pytest.param(grant_doc("shadow", "infra", to_kind="Secret"), id="to-another-kind"),
        pytest.param(grant_doc("shadow", "elsewhere"), id="another-from-namespace"),
        pytest.param(grant_doc("shadow", "infra", to_name="other"), id="another-service"),
        pytest.param(grant_doc("infra", "infra"), id="grant-in-the-route-namespace"),
    ],
)
def test_without_a_matching_grant_the_mirror_is_dropped(grant: str) -> None:
    result = translate_text(BASE + grant)
    r = only_route(result)
    assert r.action.filters.mirrors == ()
    assert [b.name for b in r.action.backends] == ["service/infra/primary:8080"]
    assert [(e.address, e.port) for b in r.action.backends for e in b.endpoints] == [("127.0.0.1", 9001)]
    assert route_condition(result)[:2] == ("False", "RefNotPermitted")
