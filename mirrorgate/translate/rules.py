"""HTTPRoute rules -> IR actions: filters, backends, mirrors, timeouts.

Decisions (the HTTPRoute filter and backendRef fields; docs/mirroring.md): an unresolvable
mirror drops only that mirror (ResolvedRefs=False); a RequestMirror beside a RequestRedirect makes
the rule invalid (IncompatibleFilters); an unresolvable ExtensionRef is not skipped: the rule
answers 500. A rule with no backendRefs and no redirect answers 500; so does one whose weights are
all 0 (no backend may take traffic).
"""

import re

import msgspec

from mirrorgate.ir.table import (
    PPM,
    Action,
    Backend,
    Filters,
    HeaderModifier,
    Mirror,
    PathModifier,
    Redirect,
    URLRewrite,
)
from mirrorgate.model.httproute import (
    HTTPHeaderFilter,
    HTTPPathModifier,
    HTTPRequestMirrorFilter,
    HTTPRoute,
    HTTPRouteFilter,
    HTTPRouteRule,
)
from mirrorgate.translate.backends import Resolved, Unresolved, resolve
from mirrorgate.translate.index import Index
from mirrorgate.translate.status import Reason


class RuleProblem(msgspec.Struct, frozen=True):
    """Why a rule cannot be served at all (the rule is dropped)."""

    reason: Reason
    message: str


class RuleResult(msgspec.Struct, frozen=True, kw_only=True):
    action: Action | None  # None: the rule is invalid and dropped
    problem: RuleProblem | None = None
    unresolved: tuple[Unresolved, ...] = ()  # refs that make ResolvedRefs False


def build_rule(ix: Index, route: HTTPRoute, index: int, rule: HTTPRouteRule) -> RuleResult:
    """Translate one rule; never raises on admitted input."""
    ns = route.metadata.namespace
    name = f"httproute/{ns}/{route.metadata.name}/rule/{index}"
    problem = _rule_problem(rule.filters)
    if problem is not None:
        return RuleResult(action=None, problem=problem)
    unresolved: list[Unresolved] = []
    prefix = _single_prefix(rule)
    filters, status = _filters(ix, ns, f"{name}/mirror", rule.filters, prefix, unresolved)
    backends = tuple(
        _backend(
            ix,
            ns,
            f"{name}/backend/{i}",
            ref.group,
            ref.kind,
            ref.name,
            ref.namespace,
            ref.port,
            ref.weight,
            ref.filters,
            prefix,
            unresolved,
        )
        for i, ref in enumerate(rule.backend_refs)
    )
    if not status and filters.redirect is None and not any(b.weight > 0 for b in backends):
        status = 500
    timeouts = rule.timeouts
    action = Action(
        rule=name,
        backends=backends,
        filters=filters,
        status=status,
        request_timeout_ms=duration_ms(timeouts.request) if timeouts and timeouts.request else None,
        backend_request_timeout_ms=(
            duration_ms(timeouts.backend_request) if timeouts and timeouts.backend_request else None
        ),
    )
    return RuleResult(action=action, unresolved=tuple(unresolved))


def _rule_problem(filters: tuple[HTTPRouteFilter, ...]) -> RuleProblem | None:
    types = {f.type for f in filters}
    if "RequestMirror" in types and "RequestRedirect" in types:
        return RuleProblem(
            Reason.INCOMPATIBLE_FILTERS,
            "RequestMirror cannot be combined with RequestRedirect: a redirected request "
            "reaches no backend, so there is nothing to mirror",
        )
    if "CORS" in types:
        return RuleProblem(Reason.UNSUPPORTED_VALUE, "The CORS filter is not supported by mirrorgate yet")
    return None


def _single_prefix(rule: HTTPRouteRule) -> str:
    """The PathPrefix value ReplacePrefixMatch replaces (admission ensures exactly one when used)."""
    prefixes = [m.path.value for m in rule.matches if m.path.type == "PathPrefix"]
    return prefixes[0] if len(prefixes) == 1 else "/"


def _backend(
    ix: Index,
    ns: str,
    name: str,
    group: str,
    kind: str,
    ref_name: str,
    ref_ns: str | None,
    port: int | None,
    weight: int,
    filters: tuple[HTTPRouteFilter, ...],
    prefix: str,
    unresolved: list[Unresolved],
) -> Backend:
    res = resolve(ix, route_ns=ns, group=group, kind=kind, name=ref_name, namespace=ref_ns, port=port)
    bfilters, status = _filters(ix, ns, f"{name}/mirror", filters, prefix, unresolved)
    if isinstance(res, Unresolved):
        unresolved.append(res)
        return Backend(name=f"{name}/invalid", weight=weight, status=500)
    return Backend(
        name=res.name,
        weight=weight,
        endpoints=res.endpoints,
        status=500 if res.tls_failed else status,
        filters=bfilters,
        app_protocol=res.app_protocol,
        tls=res.tls,
        external=res.external,
    )


def _filters(
    ix: Index,
    ns: str,
    mirror_prefix: str,
    filters: tuple[HTTPRouteFilter, ...],
    prefix: str,
    unresolved: list[Unresolved],
) -> tuple[Filters, int]:
    """The IR filters and a local status (500 when an ExtensionRef cannot be honoured)."""
    req = resp = None
    rewrite: URLRewrite | None = None
    redirect: Redirect | None = None
    mirrors: list[Mirror] = []
    status = 0
    for f in filters:
        if f.request_header_modifier is not None:
            req = header_modifier(f.request_header_modifier)
        elif f.response_header_modifier is not None:
            resp = header_modifier(f.response_header_modifier)
        elif f.url_rewrite is not None:
            rewrite = URLRewrite(hostname=f.url_rewrite.hostname, path=_path_modifier(f.url_rewrite.path, prefix))
        elif f.request_redirect is not None:
            r = f.request_redirect
            redirect = Redirect(
                scheme=r.scheme,
                hostname=r.hostname,
                path=_path_modifier(r.path, prefix),
                port=r.port,
                status_code=r.status_code,
            )
        elif f.request_mirror is not None:
            m = _mirror(ix, ns, f"{mirror_prefix}/{len(mirrors)}", f.request_mirror, unresolved)
            if m is not None:
                mirrors.append(m)
        elif f.extension_ref is not None:
            ref = f.extension_ref
            unresolved.append(
                Unresolved(
                    reason=Reason.INVALID_KIND,
                    message=f"ExtensionRef filter {ref.group}/{ref.kind} {ref.name!r} is not "
                    "supported; requests it would handle get 500",
                )
            )
            status = 500
    return Filters(
        request_headers=req, response_headers=resp, url_rewrite=rewrite, redirect=redirect, mirrors=tuple(mirrors)
    ), status


def header_modifier(h: HTTPHeaderFilter) -> HeaderModifier:
    """First entry per (case-insensitive) name wins, as the spec says."""
    seen: set[str] = set()

    def first(pairs: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        out = []
        for name, value in pairs:
            if name.lower() not in seen:
                seen.add(name.lower())
                out.append((name, value))
        return tuple(out)

    set_ = first([(x.name, x.value) for x in h.set])
    add = first([(x.name, x.value) for x in h.add])
    remove = tuple(n for n, _ in first([(n, "") for n in h.remove]))
    return HeaderModifier(set=set_, add=add, remove=remove)


def _path_modifier(p: HTTPPathModifier | None, prefix: str) -> PathModifier | None:
    if p is None:
        return None
    if p.type == "ReplaceFullPath":
        return PathModifier(type=p.type, value=p.replace_full_path or "")
    return PathModifier(type=p.type, value=p.replace_prefix_match or "", prefix=prefix)


def _mirror(ix: Index, ns: str, name: str, m: HTTPRequestMirrorFilter, unresolved: list[Unresolved]) -> Mirror | None:
    ref = m.backend_ref
    res = resolve(
        ix, route_ns=ns, group=ref.group, kind=ref.kind, name=ref.name, namespace=ref.namespace, port=ref.port
    )
    if isinstance(res, Unresolved):
        unresolved.append(Unresolved(reason=res.reason, message=f"Mirror dropped: {res.message}"))
        return None
    assert isinstance(res, Resolved)
    if res.tls_failed:
        return None  # its BackendTLSPolicy has no valid CA (the policy's status says so)
    return Mirror(
        name=name, backend=res.name, ppm=mirror_ppm(m), endpoints=res.endpoints, tls=res.tls, external=res.external
    )


def mirror_ppm(m: HTTPRequestMirrorFilter) -> int:
    """Sampling rate in parts per million.

    ``percent`` p -> p * 10,000 exactly. ``fraction`` n/d -> n * 1e6 / d rounded half up to the
    nearest integer, but never rounded down to 0 when n > 0 (a configured non-zero rate mirrors
    something), e.g. 1/3 -> 333,333 and 2/3 -> 666,667. Neither set -> 1,000,000 (all).
    """
    if m.percent is not None:
        return m.percent * 10_000
    if m.fraction is not None:
        n, d = m.fraction.numerator, m.fraction.denominator
        ppm = (2 * n * PPM + d) // (2 * d)
        return max(ppm, 1) if n > 0 else 0
    return PPM


_DURATION = re.compile(r"([0-9]{1,5})(h|ms|m|s)")
_UNIT_MS = {"h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}


def duration_ms(text: str) -> int:
    """A GEP-2257 duration (``1h30m``, ``500ms``, ``0s``) in milliseconds; admission checked the format."""
    return sum(int(n) * _UNIT_MS[u] for n, u in _DURATION.findall(text))
