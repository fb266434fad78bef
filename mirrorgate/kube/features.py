"""The Gateway API features a GatewayClass of ours claims in ``status.supportedFeatures`` (GEP-2162).

Rules:

- The names are the conformance suite's feature names (``pkg/features``) that docs/supported.md
  marks as supported; ``tests/kube/test_status_features.py`` keeps the two equal.
- Only features of the Gateway conformance profile are claimed: ``Mesh`` (GAMMA) routes attach
  to Services, not to Gateways of a class, so a GatewayClass does not advertise it.
- ``GatewayClassStatus.supportedFeatures`` (Gateway API v1.2 and later) is a ``listType=map``
  keyed by ``name`` of ``SupportedFeature`` objects, sorted in ascending alphabetical order by
  name, at most 64 entries.
"""

from typing import Final

SUPPORTED_FEATURES: Final = frozenset(
    {
        "Gateway",
        "GatewayHTTPListenerIsolation",
        "GatewayPort8080",
        "HTTPRoute",
        "HTTPRoute303RedirectStatusCode",
        "HTTPRoute307RedirectStatusCode",
        "HTTPRoute308RedirectStatusCode",
        "HTTPRouteBackendProtocolWebSocket",
        "HTTPRouteBackendRequestHeaderModification",
        "HTTPRouteBackendTimeout",
        "HTTPRouteHostRewrite",
        "HTTPRouteMethodMatching",
        "HTTPRouteNamedRouteRule",
        "HTTPRouteParentRefPort",
        "HTTPRoutePathRedirect",
        "HTTPRoutePathRewrite",
        "HTTPRoutePortRedirect",
        "HTTPRouteQueryParamMatching",
        "HTTPRouteRequestMirror",
        "HTTPRouteRequestMultipleMirrors",
        "HTTPRouteRequestPercentageMirror",
        "HTTPRouteRequestTimeout",
        "HTTPRouteResponseHeaderModification",
        "HTTPRouteSchemeRedirect",
        "ReferenceGrant",
    }
)
MAX_FEATURES: Final = 64


def supported_features() -> list[dict[str, str]]:
    """``[{"name": ...}, ...]`` sorted by name, as ``GatewayClassStatus.supportedFeatures`` wants."""
    return [{"name": n} for n in sorted(SUPPORTED_FEATURES)][:MAX_FEATURES]
