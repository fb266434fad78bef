"""MirrorPolicy -> IR ``Mirror`` and the policy's own status.

Rules:
1. An HTTPRoute ``ExtensionRef`` filter with ``group: mirrorgate.dev`` and ``kind: MirrorPolicy``
   names a policy in the route's namespace. Found: it becomes one IR ``Mirror`` counted with the
   rule's (or backendRef's) RequestMirror mirrors (``.../mirror/<k>``), with
   ``policy = "mirrorpolicy/<ns>/<name>"``. Not found: the rule keeps the unresolvable-ExtensionRef
   rule (those requests answer 500, ResolvedRefs False on the route).
2. The policy's ``backendRef`` resolves as a RequestMirror's does, from the policy's namespace; a
   cross-namespace reference needs a ReferenceGrant whose ``from`` is
   ``{group: mirrorgate.dev, kind: MirrorPolicy, namespace: <policy ns>}``. Unresolvable: the mirror
   is dropped, the route gets ResolvedRefs False (as for RequestMirror), the primary is unaffected.
3. Every field is filled: ``ppm`` by RequestMirror's rule (``rules.mirror_ppm``); ``sample_by`` with
   a header name lower-cased; ``host`` (``value`` "" unless Literal); ``request_headers`` with the
   HTTPHeaderFilter's first-entry-wins rule; ``timeout_ms`` in milliseconds; ``max_body_lag`` in
   bytes (``Ki``/``Mi``/``Gi`` powers of 1024, ``k``/``M``/``G`` of 1000); ``compare`` with header
   names lower-cased, ``ignore_headers`` = ``ir.table.COMPARE_IGNORED_HEADERS`` then the user's,
   ``redact_headers`` = ``ir.table.COMPARE_REDACTED_HEADERS`` then the user's (each name once, in
   that order).
4. Status of every policy (``MirrorPolicyStatus``): ``Accepted`` True (admission refused the invalid
   ones before translation) and ``ResolvedRefs`` True, or False with the backendRef's reason
   (BackendNotFound, RefNotPermitted, InvalidKind, UnsupportedProtocol); ``observedGeneration`` is
   the policy's generation.
"""

from mirrorgate.ir.table import (
    COMPARE_IGNORED_HEADERS,
    COMPARE_REDACTED_HEADERS,
    HeaderModifier,
    Mirror,
    MirrorCompare,
    MirrorHost,
    SampleBy,
)
from mirrorgate.model.meta import quantity_bytes
from mirrorgate.model.mirrorpolicy import GROUP, KIND, MirrorCompareSpec, MirrorPolicy, MirrorSampleBy
from mirrorgate.translate.backends import Resolved, Unresolved, resolve
from mirrorgate.translate.index import Index
from mirrorgate.translate.status import CondType, MirrorPolicyStatus, Reason, cond
from mirrorgate.translate.values import duration_ms, header_modifier, mirror_ppm


def is_policy_ref(group: str, kind: str) -> bool:
    return (group, kind) == (GROUP, KIND)


def policy_id(policy: MirrorPolicy) -> str:
    return f"mirrorpolicy/{policy.metadata.namespace}/{policy.metadata.name}"


def resolve_backend(ix: Index, policy: MirrorPolicy) -> Resolved | Unresolved:
    """The policy's backendRef, resolved from its namespace (rule 2)."""
    ref = policy.spec.backend_ref
    return resolve(
        ix,
        route_ns=policy.metadata.namespace,
        group=ref.group,
        kind=ref.kind,
        name=ref.name,
        namespace=ref.namespace,
        port=ref.port,
        from_group=GROUP,
        from_kind=KIND,
    )


def policy_mirror(ix: Index, name: str, policy: MirrorPolicy) -> Mirror | Unresolved | None:
    """The IR mirror of ``policy`` named ``name``; ``Unresolved`` when its backend is not usable;
    None when its Service's BackendTLSPolicy has no valid CA (that policy's status says so)."""
    res = resolve_backend(ix, policy)
    if isinstance(res, Unresolved):
        return Unresolved(
            reason=res.reason, message=f"Mirror dropped: MirrorPolicy {policy.metadata.name}: {res.message}"
        )
    if res.tls_failed:
        return None
    spec = policy.spec
    modifier: HeaderModifier | None = None
    if spec.request_header_modifier is not None:
        modifier = header_modifier(spec.request_header_modifier)
    return Mirror(
        name=name,
        backend=res.name,
        ppm=mirror_ppm(spec),
        endpoints=res.endpoints,
        tls=res.tls,
        external=res.external,
        policy=policy_id(policy),
        sample_by=_sample_by(spec.sample_by) if spec.sample_by is not None else None,
        host=MirrorHost(type=spec.host.type, value=spec.host.value or "") if spec.host is not None else None,
        request_headers=modifier,
        timeout_ms=duration_ms(spec.timeout) if spec.timeout is not None else None,
        max_body_lag=quantity_bytes(spec.max_body_lag) if spec.max_body_lag is not None else None,
        compare=_compare(spec.compare) if spec.compare is not None else None,
    )


def _sample_by(s: MirrorSampleBy) -> SampleBy:
    if s.header is not None:
        return SampleBy(source="Header", name=s.header.lower(), missing=s.missing)
    if s.cookie is not None:
        return SampleBy(source="Cookie", name=s.cookie, missing=s.missing)
    return SampleBy(source="QueryParam", name=s.query_param or "", missing=s.missing)


def _compare(c: MirrorCompareSpec) -> MirrorCompare:
    return MirrorCompare(
        headers=_names((), c.headers),
        ignore_headers=_names(COMPARE_IGNORED_HEADERS, c.ignore_headers),
        ignore_paths=c.ignore_paths,
        max_body_bytes=c.max_body_bytes,
        redact_headers=_names(COMPARE_REDACTED_HEADERS, c.redact_headers),
        keep_mismatches=c.keep_mismatches,
    )


def _names(base: tuple[str, ...], extra: tuple[str, ...]) -> tuple[str, ...]:
    """``base`` then ``extra``, lower-cased, each name once, first occurrence kept."""
    return tuple(dict.fromkeys([*base, *(n.lower() for n in extra)]))


def policy_statuses(ix: Index) -> dict[str, MirrorPolicyStatus]:
    """The status of every MirrorPolicy in the snapshot (rule 4), by ``str(ObjectKey)``."""
    out = {}
    for policy in ix.snap.mirror_policies:
        gen = policy.metadata.generation
        accepted = cond(CondType.ACCEPTED, True, Reason.ACCEPTED, "MirrorPolicy is accepted", gen)
        res = resolve_backend(ix, policy)
        if isinstance(res, Unresolved):
            resolved = cond(CondType.RESOLVED_REFS, False, res.reason, res.message, gen)
        else:
            resolved = cond(CondType.RESOLVED_REFS, True, Reason.RESOLVED_REFS, "The backendRef is resolved", gen)
        out[str(policy.key)] = MirrorPolicyStatus(conditions=(accepted, resolved))
    return out
