"""HTTPRoute admission (``apis/v1/httproute_types.go``, ``shared_types.go``, v1.6 standard channel).

Rules:
1. parentRefs: at most 32; two references to the same parent must both name a sectionName, and
   (parent, sectionName) pairs are unique (the CRD's two CEL rules).
2. rules: 1 to 16, at most 128 matches over the first 16 rules; per rule at most 64 matches and
   16 backendRefs; RequestRedirect excludes backendRefs; a ``replacePrefixMatch`` (in the rule's
   filters or in one backendRef's filters) needs exactly one PathPrefix match.
3. matches: path type and the Exact/PathPrefix value rules (absolute, no ``//``, ``/./``,
   ``/../``, ``%2f``, ``#``, no trailing ``/.`` or ``/..``, RFC 3986 path characters); header
   and query-param matches as ``listType=map`` on ``name``.
4. timeouts: GEP-2257 durations; ``backendRequest`` may not exceed ``request`` unless ``request``
   is ``0s``, compared as Go durations (CEL ``duration()``); a value Go cannot parse is reported
   as a CEL evaluation error with Go's message.
5. Filters are checked by ``filters``.
"""

from collections.abc import Callable, Iterable, Sequence
from typing import Final, TypeVar

from mirrorgate.errors import FieldError
from mirrorgate.gocompat import DurationError, parse_duration_ns
from mirrorgate.model.httproute import (
    HTTPBackendRef,
    HTTPPathMatch,
    HTTPPathModifier,
    HTTPRoute,
    HTTPRouteFilter,
    HTTPRouteMatch,
    HTTPRouteRule,
    HTTPRouteTimeouts,
    ParentReference,
)
from mirrorgate.providers.admission.filters import METHODS, check_backend_object_ref, check_filters
from mirrorgate.providers.admission.meta import check_metadata, is_dns1123_subdomain
from mirrorgate.providers.admission.schema import (
    DURATION,
    PATH_CHARS,
    Errors,
    check_enum,
    check_group,
    check_header_name,
    check_hostname,
    check_int_range,
    check_items,
    check_kind,
    check_list_map_keys,
    check_namespace,
    check_object_name,
    check_port,
    check_section_name,
    check_string,
    is_empty,
)

PATH_MATCH_TYPES: Final = ("Exact", "PathPrefix", "RegularExpression")
MATCH_TYPES: Final = ("Exact", "RegularExpression")

MSG_SECTION_NAME_SPECIFIED: Final = (
    "sectionName must be specified when parentRefs includes 2 or more references to the same parent"
)
MSG_SECTION_NAME_UNIQUE: Final = (
    "sectionName must be unique when parentRefs includes 2 or more references to the same parent"
)
MSG_TOTAL_MATCHES: Final = (
    "While 16 rules and 64 matches per rule are allowed, the total number of matches across "
    "all rules in a route must be less than 128"
)
MSG_REDIRECT_WITH_BACKENDS: Final = "RequestRedirect filter must not be used together with backendRefs"
MSG_PREFIX_REDIRECT: Final = (
    "When using RequestRedirect filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified"
)
MSG_PREFIX_REWRITE: Final = (
    "When using URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified"
)
MSG_BACKEND_PREFIX_REDIRECT: Final = (
    "Within backendRefs, when using RequestRedirect filter with "
    "path.replacePrefixMatch, exactly one PathPrefix match must be specified"
)
MSG_BACKEND_PREFIX_REWRITE: Final = (
    "Within backendRefs, When using URLRewrite filter with path.replacePrefixMatch, "
    "exactly one PathPrefix match must be specified"
)
MSG_TIMEOUTS: Final = "backendRequest timeout cannot be longer than request timeout"
MSG_PATH_TYPE: Final = "type must be one of ['Exact', 'PathPrefix', 'RegularExpression']"
_EXACT_OR_PREFIX: Final = "when type one of ['Exact', 'PathPrefix']"


def admit_httproute(route: HTTPRoute) -> list[FieldError]:
    """HTTPRoute (rules 1 to 5)."""
    e = Errors(has_cel=True)
    check_metadata(e, route, is_dns1123_subdomain)
    _parent_refs(e, "spec.parentRefs", route.spec.parent_refs)
    check_items(e, "spec.hostnames", route.spec.hostnames, max_items=16)
    for i, host in enumerate(route.spec.hostnames):
        check_hostname(e, f"spec.hostnames[{i}]", host)
    _route_rules(e, "spec.rules", route.spec.rules)
    return e.result()


# parentRefs -----------------------------------------------------------------------------------


def _parent_refs(e: Errors, path: str, refs: Sequence[ParentReference]) -> None:
    check_items(e, path, refs, max_items=32)
    if any(_same_parent(a, b) and is_empty(a.section_name) != is_empty(b.section_name) for a in refs for b in refs):
        e.rule(path, "array", MSG_SECTION_NAME_SPECIFIED)
    if not all(sum(_same_parent(a, b) and _same_section(a, b) for b in refs) == 1 for a in refs):
        e.rule(path, "array", MSG_SECTION_NAME_UNIQUE)
    for i, ref in enumerate(refs):
        p = f"{path}[{i}]"
        check_group(e, f"{p}.group", ref.group)
        check_kind(e, f"{p}.kind", ref.kind)
        check_object_name(e, f"{p}.name", ref.name)
        check_namespace(e, f"{p}.namespace", ref.namespace)
        check_section_name(e, f"{p}.sectionName", ref.section_name)
        check_port(e, f"{p}.port", ref.port)


def _same_parent(a: ParentReference, b: ParentReference) -> bool:
    same_ns = (is_empty(a.namespace) and is_empty(b.namespace)) or (
        a.namespace is not None and b.namespace is not None and a.namespace == b.namespace
    )
    return a.group == b.group and a.kind == b.kind and a.name == b.name and same_ns


def _same_section(a: ParentReference, b: ParentReference) -> bool:
    if is_empty(a.section_name) and is_empty(b.section_name):
        return True
    return a.section_name is not None and b.section_name is not None and a.section_name == b.section_name


# rules ----------------------------------------------------------------------------------------


def _route_rules(e: Errors, path: str, rules: Sequence[HTTPRouteRule]) -> None:
    check_items(e, path, rules, min_items=1, max_items=16)
    if sum(len(rule.matches) for rule in rules[:16]) > 128:  # rule: (sum of self[0..15].matches.size()) <= 128
        e.rule(path, "array", MSG_TOTAL_MATCHES)
    for i, rule in enumerate(rules):
        _route_rule(e, f"{path}[{i}]", rule)


def _route_rule(e: Errors, path: str, rule: HTTPRouteRule) -> None:
    _rule_cel(e, path, rule)
    check_section_name(e, f"{path}.name", rule.name)
    check_items(e, f"{path}.matches", rule.matches, max_items=64)
    for j, match in enumerate(rule.matches):
        _route_match(e, f"{path}.matches[{j}]", match)
    check_filters(e, f"{path}.filters", rule.filters)
    check_items(e, f"{path}.backendRefs", rule.backend_refs, max_items=16)
    for k, ref in enumerate(rule.backend_refs):
        _http_backend_ref(e, f"{path}.backendRefs[{k}]", ref)
    if rule.timeouts is not None:
        _timeouts(e, f"{path}.timeouts", rule.timeouts)


def _rule_cel(e: Errors, path: str, rule: HTTPRouteRule) -> None:
    if rule.backend_refs and any(f.request_redirect is not None for f in rule.filters):
        e.rule(path, "object", MSG_REDIRECT_WITH_BACKENDS)
    single_prefix = len(rule.matches) == 1 and rule.matches[0].path.type == "PathPrefix"
    checks = (
        (_exactly_one(rule.filters, _redirect_prefix), MSG_PREFIX_REDIRECT),
        (_exactly_one(rule.filters, _rewrite_prefix), MSG_PREFIX_REWRITE),
        (
            _exactly_one(rule.backend_refs, lambda b: _exactly_one(b.filters, _redirect_prefix)),
            MSG_BACKEND_PREFIX_REDIRECT,
        ),
        (
            _exactly_one(rule.backend_refs, lambda b: _exactly_one(b.filters, _rewrite_prefix)),
            MSG_BACKEND_PREFIX_REWRITE,
        ),
    )
    for uses_prefix, message in checks:
        if uses_prefix and not single_prefix:
            e.rule(path, "object", message)


_T = TypeVar("_T")


def _exactly_one(items: Iterable[_T], predicate: Callable[[_T], bool]) -> bool:
    """CEL ``exists_one``."""
    return sum(1 for item in items if predicate(item)) == 1


def _replaces_prefix(modifier: HTTPPathModifier | None) -> bool:
    return modifier is not None and modifier.type == "ReplacePrefixMatch" and modifier.replace_prefix_match is not None


def _redirect_prefix(f: HTTPRouteFilter) -> bool:
    return f.request_redirect is not None and _replaces_prefix(f.request_redirect.path)


def _rewrite_prefix(f: HTTPRouteFilter) -> bool:
    return f.url_rewrite is not None and _replaces_prefix(f.url_rewrite.path)


# matches --------------------------------------------------------------------------------------


def _route_match(e: Errors, path: str, match: HTTPRouteMatch) -> None:
    _path_match(e, f"{path}.path", match.path)
    check_items(e, f"{path}.headers", match.headers, max_items=16)
    check_list_map_keys(e, f"{path}.headers", [h.name for h in match.headers])
    for k, header in enumerate(match.headers):
        check_header_name(e, f"{path}.headers[{k}].name", header.name)
        check_enum(e, f"{path}.headers[{k}].type", header.type, MATCH_TYPES)
        check_string(e, f"{path}.headers[{k}].value", header.value, min_len=1, max_len=4096)
    check_items(e, f"{path}.queryParams", match.query_params, max_items=16)
    check_list_map_keys(e, f"{path}.queryParams", [q.name for q in match.query_params])
    for k, param in enumerate(match.query_params):
        check_header_name(e, f"{path}.queryParams[{k}].name", param.name)
        check_enum(e, f"{path}.queryParams[{k}].type", param.type, MATCH_TYPES)
        check_string(e, f"{path}.queryParams[{k}].value", param.value, min_len=1, max_len=1024)
    if match.method is not None:
        check_enum(e, f"{path}.method", match.method, METHODS)


def _path_match(e: Errors, path: str, match: HTTPPathMatch) -> None:
    check_enum(e, f"{path}.type", match.type, PATH_MATCH_TYPES)
    check_string(e, f"{path}.value", match.value, max_len=1024)
    for message in _path_value_violations(match.type, match.value):
        e.rule(path, "object", message)


def _path_value_violations(kind: str, value: str) -> list[str]:
    """The HTTPPathMatch CEL rules, in CRD order."""
    if kind not in ("Exact", "PathPrefix"):
        return [] if kind == "RegularExpression" else [MSG_PATH_TYPE]
    out = []
    if not value.startswith("/"):
        out.append(f"value must be an absolute path and start with '/' {_EXACT_OR_PREFIX}")
    out += [
        f"must not contain '{s}' {_EXACT_OR_PREFIX}" for s in ("//", "/./", "/../", "%2f", "%2F", "#") if s in value
    ]
    out += [f"must not end with '{s}' {_EXACT_OR_PREFIX}" for s in ("/..", "/.") if value.endswith(s)]
    if not PATH_CHARS.search(value):
        out.append(
            f"must only contain valid characters (matching {PATH_CHARS.source}) for types ['Exact', 'PathPrefix']"
        )
    return out


# backendRefs and timeouts ---------------------------------------------------------------------


def _http_backend_ref(e: Errors, path: str, ref: HTTPBackendRef) -> None:
    check_backend_object_ref(e, path, ref)
    check_int_range(e, f"{path}.weight", ref.weight, 0, 1000000)
    check_filters(e, f"{path}.filters", ref.filters)


def _timeouts(e: Errors, path: str, timeouts: HTTPRouteTimeouts) -> None:
    for field, value in (("backendRequest", timeouts.backend_request), ("request", timeouts.request)):
        if value is not None:
            check_string(e, f"{path}.{field}", value, pattern=DURATION)
    if timeouts.request is not None and timeouts.backend_request is not None:
        violation = _timeouts_violation(timeouts.request, timeouts.backend_request)
        if violation:
            e.rule(path, "object", violation)


def _timeouts_violation(request: str, backend: str) -> str:
    """``!(... && duration(request) != duration('0s') && duration(backendRequest) > duration(request))``.

    CEL ``&&`` is false when any term is false, else the first term's evaluation error, so an
    unparsable duration is reported as an evaluation error unless ``request`` is ``0s``.
    """
    request_ns, request_err = _duration(request)
    if request_ns == 0:
        return ""
    backend_ns, backend_err = _duration(backend)
    if request_err or backend_err:
        return f"{request_err or backend_err} evaluating rule: {MSG_TIMEOUTS}"
    return MSG_TIMEOUTS if (backend_ns or 0) > (request_ns or 0) else ""


def _duration(text: str) -> tuple[int | None, str]:
    try:
        return parse_duration_ns(text), ""
    except DurationError as exc:
        return None, str(exc)
