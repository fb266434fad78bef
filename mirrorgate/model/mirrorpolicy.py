"""MirrorPolicy (``mirrorgate.dev/v1alpha1``): one mirror with the settings RequestMirror lacks.

An HTTPRoute uses it through an ``ExtensionRef`` filter (``group: mirrorgate.dev``,
``kind: MirrorPolicy``) on a rule or a backendRef; the policy lives in the route's namespace.

Rules:
1. ``backendRef``, ``percent`` and ``fraction`` mean what they mean in a RequestMirror filter
   (``HTTPRequestMirrorFilter``): the same struct types and the same defaults (``fraction``
   denominator 100, backendRef group ``""`` and kind ``Service``).
2. ``sampleBy`` names exactly one of ``header``, ``cookie`` or ``queryParam`` (a CEL rule of the
   CRD); ``missing`` defaults to ``Random``. ``host.type`` is ``Original``, ``ShadowSuffix`` or
   ``Literal`` (``value`` only with ``Literal``).
3. ``maxBodyLag`` is an integer or a quantity string (``int-or-string`` in the CRD), kept as
   written; ``compare`` defaults (``maxBodyBytes`` 65536, ``keepMismatches`` 20) are struct
   defaults, as the CRD's ``default`` would store them.
4. Optional fields whose presence a CEL rule tests stay ``X | None``.
"""

from mirrorgate.model.httproute import BackendObjectReference, Fraction, HTTPHeaderFilter
from mirrorgate.model.meta import Resource, Spec

GROUP = "mirrorgate.dev"
KIND = "MirrorPolicy"
SAMPLE_MISSING = ("Random", "Skip")
HOST_TYPES = ("Original", "ShadowSuffix", "Literal")


class MirrorSampleBy(Spec, frozen=True, kw_only=True):
    header: str | None = None
    cookie: str | None = None
    query_param: str | None = None
    missing: str = "Random"


class MirrorHostSpec(Spec, frozen=True, kw_only=True):
    type: str
    value: str | None = None


class MirrorCompareSpec(Spec, frozen=True, kw_only=True):
    headers: tuple[str, ...] = ()
    ignore_headers: tuple[str, ...] = ()
    ignore_paths: tuple[str, ...] = ()
    max_body_bytes: int = 65_536
    redact_headers: tuple[str, ...] = ()
    keep_mismatches: int = 20


class MirrorPolicySpec(Spec, frozen=True, kw_only=True):
    backend_ref: BackendObjectReference
    percent: int | None = None
    fraction: Fraction | None = None
    sample_by: MirrorSampleBy | None = None
    host: MirrorHostSpec | None = None
    request_header_modifier: HTTPHeaderFilter | None = None
    timeout: str | None = None
    max_body_lag: int | str | None = None
    compare: MirrorCompareSpec | None = None


class MirrorPolicy(Resource, frozen=True, kw_only=True):
    spec: MirrorPolicySpec
