"""HTTPRoute rules -> IR actions: filters, backends, mirrors, timeouts.

Decisions (the HTTPRoute filter and backendRef fields; docs/mirroring.md): an unresolvable
mirror drops only that mirror (ResolvedRefs=False); a RequestMirror or a MirrorPolicy ExtensionRef
beside a RequestRedirect makes the rule invalid (IncompatibleFilters); an ExtensionRef naming a
MirrorPolicy of the route's namespace is a mirror (``translate/mirrorpolicy.py``), counted with
the RequestMirror mirrors; any other ExtensionRef (another kind or group, a policy that does not
exist) is not skipped: the rule answers 500. A rule with no backendRefs and no redirect answers
500; so does one whose weights are all 0 (no backend may take traffic).
"""

import msgspec

from mirrorgate.ir.table import (
    Action,
    Backend,
    Filters,
    Mirror,
    PathModifier,
    Redirect,
    URLRewrite,
)
from mirrorgate.model.httproute import (
    HTTPPathModifier,
    HTTPRequestMirrorFilter,
    HTTPRoute,
    HTTPRouteFilter,
    HTTPRouteRule,
)
from mirrorgate.translate.backends import Resolved, Unresolved, resolve
from mirrorgate.translate.index import Index
from mirrorgate.translate.mirrorpolicy import is_policy_ref, policy_mirror
from mirrorgate.translate.status import Reason
from mirrorgate.translate.values import duration_ms, header_modifier, mirror_ppm


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
    policy = any(
        f.extension_ref is not None and is_policy_ref(f.extension_ref.group, f.extension_ref.kind) for f in filters
    )
    if "RequestRedirect" in types and ("RequestMirror" in types or policy):
        what = "RequestMirror" if "RequestMirror" in types else "A MirrorPolicy ExtensionRef"
        return RuleProblem(
            Reason.INCOMPATIBLE_FILTERS,
            f"{what} cannot be combined with RequestRedirect: a redirected request "
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
            if is_policy_ref(ref.group, ref.kind):
                policy = ix.mirror_policies.get((ns, ref.name))
                if policy is None:
                    unresolved.append(
                        Unresolved(
                            reason=Reason.BACKEND_NOT_FOUND,
                            message=f"ExtensionRef filter: no MirrorPolicy {ns}/{ref.name} "
                            "(absent, or refused by admission); "
                            "requests it would handle get 500",
                        )
                    )
                    status = 500
                    continue
                pm = policy_mirror(ix, f"{mirror_prefix}/{len(mirrors)}", policy)
                if isinstance(pm, Unresolved):
                    unresolved.append(pm)
                elif pm is not None:
                    mirrors.append(pm)
                continue
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
