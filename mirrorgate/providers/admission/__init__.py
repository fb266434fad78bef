"""CRD-level admission: the checks a Kubernetes apiserver runs before it stores an object.

``admit(obj)`` returns every violation as a ``FieldError`` rendered the way the apiserver's
``field.Error`` prints after the path (``Invalid value: 101: spec...percent in body should be less
than or equal to 100``). An empty list means the apiserver would accept the object.

Gateway API kinds follow the **v1.6 standard-channel CRDs** (``config/crd/standard``); core kinds
follow ``k8s.io/kubernetes/pkg/apis/{core,discovery}/validation``. Rule families:

1. Metadata (every kind): name is a DNS-1123 subdomain (Service: DNS-1035 label, Namespace:
   DNS-1123 label), namespace is a DNS-1123 label, label keys/values and annotation keys.
2. OpenAPI schema limits: minItems/maxItems, minLength/maxLength, pattern (Go RE2 *search*
   semantics), minimum/maximum, enum, maxProperties, the IP ``oneOf`` on Gateway addresses.
3. List types: ``listType=map`` (``Duplicate value: {"name":"x"}``) and ``listType=set``.
4. CEL rules (``x-kubernetes-validations``), messages byte-exact: HTTPRoute parentRefs
   distinctness, total matches, path values, filter type guards, filter repetition,
   redirect/rewrite exclusivity, replacePrefixMatch, path modifiers, mirror percent/fraction,
   backend port, timeouts (``duration()`` compared as Go durations; a value Go cannot parse is
   reported as a CEL evaluation error), CORS wildcards; Gateway listeners, TLS, addresses,
   infrastructure labels/annotations.
5. The apiserver's CEL gate: when a schema error of type Unsupported/Required/Too long/Too many/
   type-invalid exists, CEL rules are not evaluated and one ``<nil>: Invalid value: null: some
   validation rules were not checked ...`` error is added instead (only for CRDs that have rules).
6. Core kinds: Service (type, ports, names, targetPort, protocol, clusterIP(s), externalName),
   EndpointSlice (addressType, addresses per type, ports), Endpoints (subsets, IPs, ports).

Deliberate deviations, documented: EndpointSlice/Endpoints loopback, link-local and unspecified
addresses are accepted (the apiserver rejects them; a local gateway needs ``127.0.0.1``), and
IPs use the legacy (non-strict) parser, as with the ``StrictIPCIDRValidation`` gate off.
"""

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final, TypeVar

from mirrorgate.errors import FieldError
from mirrorgate.model.core import (
    Endpoint,
    EndpointPort,
    Endpoints,
    EndpointSlice,
    EndpointSubset,
    Namespace,
    ReferenceGrant,
    Service,
    ServicePort,
)
from mirrorgate.model.gateway import (
    Gateway,
    GatewayClass,
    GatewayInfrastructure,
    GatewaySpecAddress,
    GatewayTLSConfig,
    Listener,
)
from mirrorgate.model.httproute import (
    BackendObjectReference,
    HTTPBackendRef,
    HTTPCORSFilter,
    HTTPHeaderFilter,
    HTTPPathMatch,
    HTTPPathModifier,
    HTTPRequestMirrorFilter,
    HTTPRequestRedirectFilter,
    HTTPRoute,
    HTTPRouteFilter,
    HTTPRouteMatch,
    HTTPRouteRule,
    HTTPRouteTimeouts,
    HTTPURLRewriteFilter,
    ParentReference,
)
from mirrorgate.model.meta import Resource

__all__ = ["admit"]


def admit(obj: Resource) -> list[FieldError]:
    """Return every admission violation of ``obj`` (empty when the apiserver would accept it)."""
    match obj:
        case HTTPRoute():
            return _admit_httproute(obj)
        case Gateway():
            return _admit_gateway(obj)
        case GatewayClass():
            return _admit_gateway_class(obj)
        case ReferenceGrant():
            return _admit_reference_grant(obj)
        case Service():
            return _admit_service(obj)
        case EndpointSlice():
            return _admit_endpoint_slice(obj)
        case Endpoints():
            return _admit_endpoints(obj)
        case Namespace():
            return _admit_namespace(obj)
    return []


# ---------------------------------------------------------------------------------------------
# Rendering: what field.Error.ErrorBody prints for a bad value.
# ---------------------------------------------------------------------------------------------


class _Json:
    """A value the apiserver renders with ``json.Marshal`` (pointers, maps) instead of ``%q``."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value


_GO_ESCAPES: Final = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _go_quote(s: str) -> str:
    """Go's ``strconv.Quote`` (``%q``)."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x80 or ch.isprintable():
            out.append(ch)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _go_json(value: object) -> str:
    """Go's ``json.Marshal``: compact, sorted keys, HTML-safe."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    for raw, esc in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, esc)
    return text


def _render(value: object) -> str:
    if isinstance(value, _Json):
        return _go_json(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return _go_quote(value)
    return _go_json(value)


# ---------------------------------------------------------------------------------------------
# The error collector: schema errors, list-type errors, CEL errors, and the CEL gate.
# ---------------------------------------------------------------------------------------------

_NOT_CHECKED: Final = FieldError(
    path="<nil>",
    message="Invalid value: null: some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation",
)


class _Errors:
    """Collects errors in the apiserver's order: schema, list types, then CEL (or the gate)."""

    def __init__(self, *, has_cel: bool) -> None:
        self.has_cel = has_cel
        self.schema: list[FieldError] = []
        self.cel: list[FieldError] = []
        self.blocking = False

    def _add(self, path: str, message: str, *, blocking: bool = False) -> None:
        self.schema.append(FieldError(path=path, message=message))
        self.blocking = self.blocking or blocking

    def invalid(self, path: str, value: object, detail: str) -> None:
        self._add(path, f"Invalid value: {_render(value)}: {detail}")

    def type_invalid(self, path: str, value: object, detail: str) -> None:
        self._add(path, f"Invalid value: {_render(value)}: {detail}", blocking=True)

    def required(self, path: str, detail: str = "") -> None:
        self._add(path, f"Required value: {detail}" if detail else "Required value", blocking=True)

    def duplicate(self, path: str, value: object) -> None:
        self._add(path, f"Duplicate value: {_render(value)}")

    def not_supported(self, path: str, value: object, allowed: Iterable[object]) -> None:
        values = ", ".join(_go_quote(str(a)) for a in allowed)
        self._add(path, f"Unsupported value: {_render(value)}: supported values: {values}", blocking=True)

    def too_long(self, path: str, max_len: int) -> None:
        unit = "byte" if max_len == 1 else "bytes"
        self._add(path, f"Too long: may not be more than {max_len} {unit}", blocking=True)

    def too_many(self, path: str, actual: int, max_items: int) -> None:
        unit = "item" if max_items == 1 else "items"
        self._add(path, f"Too many: {actual}: must have at most {max_items} {unit}", blocking=True)

    def rule(self, path: str, kind: str, message: str) -> None:
        """A failed CEL rule on a node whose schema type is ``kind`` (object, array, string)."""
        self.cel.append(FieldError(path=path, message=f"Invalid value: {_go_quote(kind)}: {message}"))

    def result(self) -> list[FieldError]:
        errors = list(self.schema)
        if self.has_cel:
            errors.extend([_NOT_CHECKED] if self.blocking else self.cel)
        seen: set[FieldError] = set()
        unique = []
        for err in errors:  # field.ErrorList.ToAggregate drops exact repeats
            if err not in seen:
                seen.add(err)
                unique.append(err)
        return unique


# ---------------------------------------------------------------------------------------------
# Patterns: Go RE2 semantics (MatchString is a search; ``$`` is end of text only).
# ---------------------------------------------------------------------------------------------


class _Pattern:
    """A CRD ``pattern`` as written in the CRD (for messages) and compiled with Go semantics."""

    __slots__ = ("regex", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.regex = re.compile(_go_regex(source))

    def search(self, value: str) -> bool:
        return self.regex.search(value) is not None


def _go_regex(source: str) -> str:
    """Translate an RE2 pattern for ``re``: an unescaped ``$`` outside a class becomes ``\\Z``."""
    out: list[str] = []
    in_class = escaped = False
    for ch in source:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            out.append(ch)
            escaped = True
        elif in_class:
            out.append(ch)
            in_class = ch != "]"
        elif ch == "[":
            out.append(ch)
            in_class = True
        else:
            out.append(r"\Z" if ch == "$" else ch)
    return "".join(out)


_DNS_SUBDOMAIN: Final = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
HOSTNAME: Final = _Pattern(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
PRECISE_HOSTNAME: Final = _Pattern(f"^{_DNS_SUBDOMAIN}$")
GROUP: Final = _Pattern(f"^$|^{_DNS_SUBDOMAIN}$")
KIND: Final = _Pattern(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
NAMESPACE: Final = _Pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SECTION_NAME: Final = _Pattern(f"^{_DNS_SUBDOMAIN}$")
HEADER_NAME: Final = _Pattern(r"^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$")
DURATION: Final = _Pattern(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")
CORS_ORIGIN: Final = _Pattern(r"(^\*$)|(^([a-zA-Z][a-zA-Z0-9+\-.]+):\/\/([^:/?#]+)(:([0-9]{1,5}))?$)")
CONTROLLER_NAME: Final = _Pattern(f"^{_DNS_SUBDOMAIN}" + r"\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$")
ADDRESS_TYPE: Final = _Pattern(
    r"^Hostname|IPAddress|NamedAddress|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
    r"\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$"
)
PROTOCOL: Final = _Pattern(
    r"^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
    r"\/[A-Za-z0-9]+$"
)
LABEL_VALUE: Final = _Pattern(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_PATH_CHARS: Final = _Pattern(r"^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$")
_QUALIFIED_KEY: Final = _Pattern(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$"
)


# ---------------------------------------------------------------------------------------------
# OpenAPI schema checks (kube-openapi validators and their messages).
# ---------------------------------------------------------------------------------------------


def _string(
    e: _Errors, path: str, value: str, *, min_len: int = 0, max_len: int | None = None, pattern: _Pattern | None = None
) -> None:
    """maxLength, then minLength, then pattern; the string validator stops at the first failure."""
    if max_len is not None and len(value) > max_len:
        e.too_long(path, max_len)
    elif len(value) < min_len:
        e.invalid(path, value, f"{path} in body should be at least {min_len} chars long")
    elif pattern is not None and not pattern.search(value):
        e.invalid(path, value, f"{path} in body should match '{pattern.source}'")


def _int_range(e: _Errors, path: str, value: int, lo: int | None, hi: int | None) -> None:
    if hi is not None and value > hi:
        e.invalid(path, value, f"{path} in body should be less than or equal to {hi}")
    if lo is not None and value < lo:
        e.invalid(path, value, f"{path} in body should be greater than or equal to {lo}")


def _enum(e: _Errors, path: str, value: object, allowed: Sequence[object]) -> None:
    if value not in allowed:
        e.not_supported(path, value, allowed)


def _items(e: _Errors, path: str, items: Sequence[object], *, max_items: int | None = None, min_items: int = 0) -> None:
    if len(items) < min_items:
        e.invalid(path, len(items), f"{path} in body should have at least {min_items} items")
    if max_items is not None and len(items) > max_items:
        e.too_many(path, len(items), max_items)


def _max_properties(e: _Errors, path: str, mapping: Mapping[str, str], max_props: int) -> None:
    if len(mapping) > max_props:
        e.too_many(path, len(mapping), max_props)


def _list_map_keys(e: _Errors, path: str, keys: Sequence[str], key_name: str = "name") -> None:
    """``x-kubernetes-list-type: map``: the second occurrence of each key is a duplicate."""
    counts: dict[str, int] = {}
    for i, key in enumerate(keys):
        counts[key] = counts.get(key, 0) + 1
        if counts[key] == 2:
            e.duplicate(f"{path}[{i}]", _Json({key_name: key}))


def _list_set(e: _Errors, path: str, values: Sequence[str]) -> None:
    """``x-kubernetes-list-type: set``."""
    counts: dict[str, int] = {}
    for i, value in enumerate(values):
        counts[value] = counts.get(value, 0) + 1
        if counts[value] == 2:
            e.duplicate(f"{path}[{i}]", value)


# Typed Gateway API strings (shared_types.go).


def _group(e: _Errors, path: str, value: str) -> None:
    _string(e, path, value, max_len=253, pattern=GROUP)


def _kind(e: _Errors, path: str, value: str) -> None:
    _string(e, path, value, min_len=1, max_len=63, pattern=KIND)


def _object_name(e: _Errors, path: str, value: str) -> None:
    _string(e, path, value, min_len=1, max_len=253)


def _namespace(e: _Errors, path: str, value: str | None) -> None:
    if value is not None:
        _string(e, path, value, min_len=1, max_len=63, pattern=NAMESPACE)


def _section_name(e: _Errors, path: str, value: str | None) -> None:
    if value is not None:
        _string(e, path, value, min_len=1, max_len=253, pattern=SECTION_NAME)


def _hostname(e: _Errors, path: str, value: str | None, pattern: _Pattern = HOSTNAME) -> None:
    if value is not None:
        _string(e, path, value, min_len=1, max_len=253, pattern=pattern)


def _header_name(e: _Errors, path: str, value: str) -> None:
    _string(e, path, value, min_len=1, max_len=256, pattern=HEADER_NAME)


def _port(e: _Errors, path: str, value: int | None) -> None:
    if value is not None:
        _int_range(e, path, value, 1, 65535)


# ---------------------------------------------------------------------------------------------
# Metadata (apimachinery ValidateObjectMeta and k8s.io/apimachinery/pkg/util/validation).
# ---------------------------------------------------------------------------------------------

_DNS1123_LABEL_MSG: Final = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_MSG: Final = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)
_DNS1035_LABEL_MSG: Final = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character"
)
_QUALIFIED_NAME_MSG: Final = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
)
_LABEL_VALUE_MSG: Final = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character"
)
_DNS1123_LABEL_FMT: Final = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT: Final = _DNS_SUBDOMAIN
_DNS1035_LABEL_FMT: Final = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME_FMT: Final = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT: Final = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_DNS1123_LABEL_RE: Final = re.compile(rf"{_DNS1123_LABEL_FMT}\Z")
_DNS1123_SUBDOMAIN_RE: Final = re.compile(rf"{_DNS1123_SUBDOMAIN_FMT}\Z")
_DNS1035_LABEL_RE: Final = re.compile(rf"{_DNS1035_LABEL_FMT}\Z")
_QUALIFIED_NAME_RE: Final = re.compile(rf"{_QUALIFIED_NAME_FMT}\Z")
_LABEL_VALUE_RE: Final = re.compile(rf"{_LABEL_VALUE_FMT}\Z")


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    """apimachinery ``RegexError``."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{x}', " for x in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len_error(n: int) -> str:
    return f"must be no more than {n} characters"


def _blen(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass"))


def is_dns1123_label(value: str) -> list[str]:
    errs = [_max_len_error(63)] if _blen(value) > 63 else []
    if not _DNS1123_LABEL_RE.match(value):
        if _DNS1123_SUBDOMAIN_RE.match(value):
            errs.append("must not contain dots")
        else:
            errs.append(_regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    errs = [_max_len_error(253)] if _blen(value) > 253 else []
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(_regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    errs = [_max_len_error(63)] if _blen(value) > 63 else []
    if not _DNS1035_LABEL_RE.match(value):
        errs.append(_regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def is_qualified_name(value: str) -> list[str]:
    """apimachinery ``IsQualifiedName`` (label keys, annotation keys, appProtocol)."""
    parts = value.split("/")
    errs: list[str] = []
    if len(parts) > 2:
        return [
            "a qualified name "
            + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + msg for msg in is_dns1123_subdomain(prefix))
    if not name:
        errs.append("name part must be non-empty")
    elif _blen(name) > 63:
        errs.append("name part " + _max_len_error(63))
    if not _QUALIFIED_NAME_RE.match(name):
        errs.append(
            "name part " + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def is_label_value(value: str) -> list[str]:
    errs = [_max_len_error(63)] if _blen(value) > 63 else []
    if not _LABEL_VALUE_RE.match(value):
        errs.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def _each(e: _Errors, path: str, value: str, messages: Iterable[str]) -> None:
    for msg in messages:
        e.invalid(path, value, msg)


_ANNOTATIONS_LIMIT: Final = 256 * 1024


def _metadata(e: _Errors, obj: Resource, name_rule: Callable[[str], list[str]], *, namespaced: bool = True) -> None:
    meta = obj.metadata
    if meta.name:
        _each(e, "metadata.name", meta.name, name_rule(meta.name))
    if namespaced and meta.namespace:
        _each(e, "metadata.namespace", meta.namespace, is_dns1123_label(meta.namespace))
    for key in sorted(meta.labels):
        _each(e, "metadata.labels", key, is_qualified_name(key))
        _each(e, "metadata.labels", meta.labels[key], is_label_value(meta.labels[key]))
    size = 0
    for key in sorted(meta.annotations):
        _each(e, "metadata.annotations", key, is_qualified_name(key.lower()))
        size += _blen(key) + _blen(meta.annotations[key])
    if size > _ANNOTATIONS_LIMIT:
        e.too_long("metadata.annotations", _ANNOTATIONS_LIMIT)


# ---------------------------------------------------------------------------------------------
# IP parsing as Go's legacy net.ParseIP / netutils.ParseIPSloppy.
# ---------------------------------------------------------------------------------------------


def _parse_ipv4_sloppy(s: str) -> bytes | None:
    parts = s.split(".")
    if len(parts) != 4 or any(not p.isascii() or not p.isdigit() or int(p) > 255 for p in parts):
        return None
    return bytes(int(p) for p in parts)


def _parse_ip(s: str) -> bytes | None:
    """16 bytes for IPv6, 4 for IPv4 (the first of ``.``/``:`` decides, as in Go), None if invalid."""
    for ch in s:
        if ch == ".":
            return _parse_ipv4_sloppy(s)
        if ch == ":":
            if "%" in s or not s.isascii():
                return None
            try:
                return ipaddress.IPv6Address(s).packed
            except ValueError:
                return _parse_ipv6_sloppy_v4_tail(s)
    return None


def _parse_ipv6_sloppy_v4_tail(s: str) -> bytes | None:
    """IPv6 with an embedded IPv4 tail whose octets have leading zeros (Go accepts, Python does not)."""
    head, sep, tail = s.rpartition(":")
    v4 = _parse_ipv4_sloppy(tail) if sep and "." in tail else None
    if v4 is None:
        return None
    try:
        return ipaddress.IPv6Address(f"{head}:{ipaddress.IPv4Address(v4)}").packed
    except ValueError:
        return None


def _ip_to4(ip: bytes) -> bytes | None:
    """Go ``IP.To4``: IPv4 and IPv4-mapped IPv6 addresses."""
    if len(ip) == 4:
        return ip
    if ip[:12] == b"\x00" * 10 + b"\xff\xff":
        return ip[12:]
    return None


_VALID_IP_MSG: Final = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


# ---------------------------------------------------------------------------------------------
# Go durations (time.ParseDuration), for CEL ``duration()``.
# ---------------------------------------------------------------------------------------------

_UNITS_NS: Final = {
    "ns": 1,
    "us": 10**3,
    "\u00b5s": 10**3,
    "\u03bcs": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
_MAX_U63: Final = 1 << 63


class _DurationError(ValueError):
    """A ``time.ParseDuration`` failure; ``str()`` is Go's message."""


def _go_time_quote(s: str) -> str:
    """The ``time`` package's own ``quote``: non-ASCII and control bytes as ``\\xNN``."""
    out = ['"']
    for ch in s:
        if ord(ch) >= 0x80 or ch < " ":
            out.extend(f"\\x{b:02x}" for b in ch.encode("utf-8", "surrogatepass"))
        else:
            out.append("\\" + ch if ch in ('"', "\\") else ch)
    out.append('"')
    return "".join(out)


def _leading_int(s: str) -> tuple[int, str]:
    x, i = 0, 0
    while i < len(s) and "0" <= s[i] <= "9":
        if x > _MAX_U63 // 10:
            raise _DurationError("overflow")
        x = x * 10 + ord(s[i]) - 48
        if x > _MAX_U63:
            raise _DurationError("overflow")
        i += 1
    return x, s[i:]


def _leading_fraction(s: str) -> tuple[int, float, str]:
    x, scale, i, overflow = 0, 1.0, 0, False
    while i < len(s) and "0" <= s[i] <= "9":
        if not overflow:
            y = x * 10 + ord(s[i]) - 48
            if x > (_MAX_U63 - 1) // 10 or y > _MAX_U63:
                overflow = True
            else:
                x, scale = y, scale * 10
        i += 1
    return x, scale, s[i:]


def _parse_go_duration(text: str) -> int:
    """Nanoseconds, as Go ``time.ParseDuration``; raises ``_DurationError`` carrying Go's message."""
    invalid = _DurationError(f"time: invalid duration {_go_time_quote(text)}")
    s, neg = text, False
    if s[:1] in ("-", "+"):
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        raise invalid
    total = 0
    while s:
        if not (s[0] == "." or "0" <= s[0] <= "9"):
            raise invalid
        before = len(s)
        try:
            whole, s = _leading_int(s)
        except _DurationError:
            raise invalid from None
        pre, post, frac, scale = before != len(s), False, 0, 1.0
        if s[:1] == ".":
            s = s[1:]
            before = len(s)
            frac, scale, s = _leading_fraction(s)
            post = before != len(s)
        if not pre and not post:
            raise invalid
        i = 0
        while i < len(s) and s[i] != "." and not "0" <= s[i] <= "9":
            i += 1
        if i == 0:
            raise _DurationError(f"time: missing unit in duration {_go_time_quote(text)}")
        unit, s = s[:i], s[i:]
        if unit not in _UNITS_NS:
            raise _DurationError(f"time: unknown unit {_go_time_quote(unit)} in duration {_go_time_quote(text)}")
        scale_ns = _UNITS_NS[unit]
        if whole > _MAX_U63 // scale_ns:
            raise invalid
        value = whole * scale_ns
        if frac > 0:
            value += int(float(frac) * (float(scale_ns) / scale))
            if value > _MAX_U63:
                raise invalid
        total += value
        if total > _MAX_U63:
            raise invalid
    if neg:
        return -total
    if total > _MAX_U63 - 1:
        raise invalid
    return total


# ---------------------------------------------------------------------------------------------
# HTTPRoute (apis/v1/httproute_types.go, shared_types.go, object_reference_types.go).
# ---------------------------------------------------------------------------------------------

PATH_MATCH_TYPES: Final = ("Exact", "PathPrefix", "RegularExpression")
MATCH_TYPES: Final = ("Exact", "RegularExpression")
METHODS: Final = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
FILTER_TYPES: Final = (
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
    "RequestMirror",
    "RequestRedirect",
    "URLRewrite",
    "ExtensionRef",
    "CORS",
)
PATH_MODIFIER_TYPES: Final = ("ReplaceFullPath", "ReplacePrefixMatch")
REDIRECT_SCHEMES: Final = ("http", "https")
REDIRECT_CODES: Final = (301, 302, 303, 307, 308)
CORS_METHODS: Final = (*METHODS, "*")

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
MSG_REDIRECT_AND_REWRITE: Final = (
    "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both"
)
MSG_MIRROR_PERCENT_AND_FRACTION: Final = "Only one of percent or fraction may be specified in HTTPRequestMirrorFilter"
MSG_FRACTION: Final = "numerator must be less than or equal to denominator"
MSG_SERVICE_PORT: Final = "Must have port for Service reference"
MSG_TIMEOUTS: Final = "backendRequest timeout cannot be longer than request timeout"
MSG_PATH_TYPE: Final = "type must be one of ['Exact', 'PathPrefix', 'RegularExpression']"
_EXACT_OR_PREFIX: Final = "when type one of ['Exact', 'PathPrefix']"

# (filter type, model attribute, CRD field name) in the CRD's rule order.
_FILTER_FIELDS: Final = (
    ("RequestHeaderModifier", "request_header_modifier", "requestHeaderModifier"),
    ("ResponseHeaderModifier", "response_header_modifier", "responseHeaderModifier"),
    ("RequestMirror", "request_mirror", "requestMirror"),
    ("RequestRedirect", "request_redirect", "requestRedirect"),
    ("URLRewrite", "url_rewrite", "urlRewrite"),
    ("CORS", "cors", "cors"),
    ("ExtensionRef", "extension_ref", "extensionRef"),
)
_NOT_REPEATABLE: Final = ("CORS", "RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite")


def _admit_httproute(route: HTTPRoute) -> list[FieldError]:
    e = _Errors(has_cel=True)
    _metadata(e, route, is_dns1123_subdomain)
    _parent_refs(e, "spec.parentRefs", route.spec.parent_refs)
    _items(e, "spec.hostnames", route.spec.hostnames, max_items=16)
    for i, host in enumerate(route.spec.hostnames):
        _hostname(e, f"spec.hostnames[{i}]", host)
    _route_rules(e, "spec.rules", route.spec.rules)
    return e.result()


# parentRefs -----------------------------------------------------------------------------------


def _parent_refs(e: _Errors, path: str, refs: Sequence[ParentReference]) -> None:
    _items(e, path, refs, max_items=32)
    if any(_same_parent(a, b) and _empty(a.section_name) != _empty(b.section_name) for a in refs for b in refs):
        e.rule(path, "array", MSG_SECTION_NAME_SPECIFIED)
    if not all(sum(_same_parent(a, b) and _same_section(a, b) for b in refs) == 1 for a in refs):
        e.rule(path, "array", MSG_SECTION_NAME_UNIQUE)
    for i, ref in enumerate(refs):
        p = f"{path}[{i}]"
        _group(e, f"{p}.group", ref.group)
        _kind(e, f"{p}.kind", ref.kind)
        _object_name(e, f"{p}.name", ref.name)
        _namespace(e, f"{p}.namespace", ref.namespace)
        _section_name(e, f"{p}.sectionName", ref.section_name)
        _port(e, f"{p}.port", ref.port)


def _empty(value: str | None) -> bool:
    return value is None or value == ""


def _same_parent(a: ParentReference, b: ParentReference) -> bool:
    same_ns = (_empty(a.namespace) and _empty(b.namespace)) or (
        a.namespace is not None and b.namespace is not None and a.namespace == b.namespace
    )
    return a.group == b.group and a.kind == b.kind and a.name == b.name and same_ns


def _same_section(a: ParentReference, b: ParentReference) -> bool:
    if _empty(a.section_name) and _empty(b.section_name):
        return True
    return a.section_name is not None and b.section_name is not None and a.section_name == b.section_name


# rules ----------------------------------------------------------------------------------------


def _route_rules(e: _Errors, path: str, rules: Sequence[HTTPRouteRule]) -> None:
    _items(e, path, rules, min_items=1, max_items=16)
    if sum(len(rule.matches) for rule in rules[:16]) > 128:  # rule: (sum of self[0..15].matches.size()) <= 128
        e.rule(path, "array", MSG_TOTAL_MATCHES)
    for i, rule in enumerate(rules):
        _route_rule(e, f"{path}[{i}]", rule)


def _route_rule(e: _Errors, path: str, rule: HTTPRouteRule) -> None:
    _rule_cel(e, path, rule)
    _section_name(e, f"{path}.name", rule.name)
    _items(e, f"{path}.matches", rule.matches, max_items=64)
    for j, match in enumerate(rule.matches):
        _route_match(e, f"{path}.matches[{j}]", match)
    _filters(e, f"{path}.filters", rule.filters)
    _items(e, f"{path}.backendRefs", rule.backend_refs, max_items=16)
    for k, ref in enumerate(rule.backend_refs):
        _http_backend_ref(e, f"{path}.backendRefs[{k}]", ref)
    if rule.timeouts is not None:
        _timeouts(e, f"{path}.timeouts", rule.timeouts)


def _rule_cel(e: _Errors, path: str, rule: HTTPRouteRule) -> None:
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


def _route_match(e: _Errors, path: str, match: HTTPRouteMatch) -> None:
    _path_match(e, f"{path}.path", match.path)
    _items(e, f"{path}.headers", match.headers, max_items=16)
    _list_map_keys(e, f"{path}.headers", [h.name for h in match.headers])
    for k, header in enumerate(match.headers):
        _header_name(e, f"{path}.headers[{k}].name", header.name)
        _enum(e, f"{path}.headers[{k}].type", header.type, MATCH_TYPES)
        _string(e, f"{path}.headers[{k}].value", header.value, min_len=1, max_len=4096)
    _items(e, f"{path}.queryParams", match.query_params, max_items=16)
    _list_map_keys(e, f"{path}.queryParams", [q.name for q in match.query_params])
    for k, param in enumerate(match.query_params):
        _header_name(e, f"{path}.queryParams[{k}].name", param.name)
        _enum(e, f"{path}.queryParams[{k}].type", param.type, MATCH_TYPES)
        _string(e, f"{path}.queryParams[{k}].value", param.value, min_len=1, max_len=1024)
    if match.method is not None:
        _enum(e, f"{path}.method", match.method, METHODS)


def _path_match(e: _Errors, path: str, match: HTTPPathMatch) -> None:
    _enum(e, f"{path}.type", match.type, PATH_MATCH_TYPES)
    _string(e, f"{path}.value", match.value, max_len=1024)
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
    if not _PATH_CHARS.search(value):
        out.append(
            f"must only contain valid characters (matching {_PATH_CHARS.source}) for types ['Exact', 'PathPrefix']"
        )
    return out


# filters --------------------------------------------------------------------------------------


def _filters(e: _Errors, path: str, filters: Sequence[HTTPRouteFilter]) -> None:
    """A ``filters`` list of a rule or of a backendRef: limits, list CEL rules, each filter."""
    _items(e, path, filters, max_items=16)
    types = [f.type for f in filters]
    if "RequestRedirect" in types and "URLRewrite" in types:
        e.rule(path, "array", MSG_REDIRECT_AND_REWRITE)
    for kind in _NOT_REPEATABLE:
        if types.count(kind) > 1:
            e.rule(path, "array", f"{kind} filter cannot be repeated")
    for j, flt in enumerate(filters):
        _filter(e, f"{path}[{j}]", flt)


def _filter(e: _Errors, path: str, flt: HTTPRouteFilter) -> None:
    for kind, attr, field in _FILTER_FIELDS:
        present = getattr(flt, attr) is not None
        if present and flt.type != kind:
            e.rule(path, "object", f"filter.{field} must be nil if the filter.type is not {kind}")
        if not present and flt.type == kind:
            e.rule(path, "object", f"filter.{field} must be specified for {kind} filter.type")
    _enum(e, f"{path}.type", flt.type, FILTER_TYPES)
    if flt.request_header_modifier is not None:
        _header_filter(e, f"{path}.requestHeaderModifier", flt.request_header_modifier)
    if flt.response_header_modifier is not None:
        _header_filter(e, f"{path}.responseHeaderModifier", flt.response_header_modifier)
    if flt.request_mirror is not None:
        _mirror(e, f"{path}.requestMirror", flt.request_mirror)
    if flt.request_redirect is not None:
        _redirect(e, f"{path}.requestRedirect", flt.request_redirect)
    if flt.url_rewrite is not None:
        _rewrite(e, f"{path}.urlRewrite", flt.url_rewrite)
    if flt.extension_ref is not None:
        ref = flt.extension_ref
        _group(e, f"{path}.extensionRef.group", ref.group)
        _kind(e, f"{path}.extensionRef.kind", ref.kind)
        _object_name(e, f"{path}.extensionRef.name", ref.name)
    if flt.cors is not None:
        _cors(e, f"{path}.cors", flt.cors)


def _header_filter(e: _Errors, path: str, hf: HTTPHeaderFilter) -> None:
    for name, headers in (("add", hf.add), ("set", hf.set)):
        p = f"{path}.{name}"
        _items(e, p, headers, max_items=16)
        _list_map_keys(e, p, [h.name for h in headers])
        for k, header in enumerate(headers):
            _header_name(e, f"{p}[{k}].name", header.name)
            _string(e, f"{p}[{k}].value", header.value, min_len=1, max_len=4096)
    _items(e, f"{path}.remove", hf.remove, max_items=16)
    _list_set(e, f"{path}.remove", hf.remove)


def _backend_object_ref(e: _Errors, path: str, ref: BackendObjectReference | HTTPBackendRef) -> None:
    if ref.group == "" and ref.kind == "Service" and ref.port is None:
        e.rule(path, "object", MSG_SERVICE_PORT)
    _group(e, f"{path}.group", ref.group)
    _kind(e, f"{path}.kind", ref.kind)
    _object_name(e, f"{path}.name", ref.name)
    _namespace(e, f"{path}.namespace", ref.namespace)
    _port(e, f"{path}.port", ref.port)


def _mirror(e: _Errors, path: str, mirror: HTTPRequestMirrorFilter) -> None:
    if mirror.percent is not None and mirror.fraction is not None:
        e.rule(path, "object", MSG_MIRROR_PERCENT_AND_FRACTION)
    _backend_object_ref(e, f"{path}.backendRef", mirror.backend_ref)
    if mirror.percent is not None:
        _int_range(e, f"{path}.percent", mirror.percent, 0, 100)
    if mirror.fraction is not None:
        fraction = mirror.fraction
        if fraction.numerator > fraction.denominator:
            e.rule(f"{path}.fraction", "object", MSG_FRACTION)
        _int_range(e, f"{path}.fraction.denominator", fraction.denominator, 1, None)
        _int_range(e, f"{path}.fraction.numerator", fraction.numerator, 0, None)


def _redirect(e: _Errors, path: str, redirect: HTTPRequestRedirectFilter) -> None:
    _hostname(e, f"{path}.hostname", redirect.hostname, PRECISE_HOSTNAME)
    if redirect.path is not None:
        _path_modifier(e, f"{path}.path", redirect.path)
    _port(e, f"{path}.port", redirect.port)
    if redirect.scheme is not None:
        _enum(e, f"{path}.scheme", redirect.scheme, REDIRECT_SCHEMES)
    _enum(e, f"{path}.statusCode", redirect.status_code, REDIRECT_CODES)


def _rewrite(e: _Errors, path: str, rewrite: HTTPURLRewriteFilter) -> None:
    _hostname(e, f"{path}.hostname", rewrite.hostname, PRECISE_HOSTNAME)
    if rewrite.path is not None:
        _path_modifier(e, f"{path}.path", rewrite.path)


def _path_modifier(e: _Errors, path: str, mod: HTTPPathModifier) -> None:
    pairs = (
        ("ReplaceFullPath", "replaceFullPath", mod.replace_full_path),
        ("ReplacePrefixMatch", "replacePrefixMatch", mod.replace_prefix_match),
    )
    for kind, field, value in pairs:
        if mod.type == kind and value is None:
            e.rule(path, "object", f"{field} must be specified when type is set to '{kind}'")
        if value is not None and mod.type != kind:
            e.rule(path, "object", f"type must be '{kind}' when {field} is set")
    for _kind_name, field, value in pairs:
        if value is not None:
            _string(e, f"{path}.{field}", value, max_len=1024)
    _enum(e, f"{path}.type", mod.type, PATH_MODIFIER_TYPES)


def _cors(e: _Errors, path: str, cors: HTTPCORSFilter) -> None:
    lists = (
        ("allowOrigins", cors.allow_origins, 64),
        ("allowMethods", cors.allow_methods, 9),
        ("allowHeaders", cors.allow_headers, 64),
        ("exposeHeaders", cors.expose_headers, 64),
    )
    for field, values, max_items in lists:
        p = f"{path}.{field}"
        _items(e, p, values, max_items=max_items)
        _list_set(e, p, values)
        for k, value in enumerate(values):
            if field == "allowOrigins":
                _string(e, f"{p}[{k}]", value, min_len=1, max_len=253, pattern=CORS_ORIGIN)
            elif field == "allowMethods":
                _enum(e, f"{p}[{k}]", value, CORS_METHODS)
            else:
                _header_name(e, f"{p}[{k}]", value)
    if "*" in cors.allow_origins and len(cors.allow_origins) > 1:
        e.rule(f"{path}.allowOrigins", "array", "AllowOrigins cannot contain '*' alongside other origins")
    if "*" in cors.allow_methods and len(cors.allow_methods) > 1:
        e.rule(f"{path}.allowMethods", "array", "AllowMethods cannot contain '*' alongside other methods")
    _int_range(e, f"{path}.maxAge", cors.max_age, 1, None)


# backendRefs and timeouts ---------------------------------------------------------------------


def _http_backend_ref(e: _Errors, path: str, ref: HTTPBackendRef) -> None:
    _backend_object_ref(e, path, ref)
    _int_range(e, f"{path}.weight", ref.weight, 0, 1000000)
    _filters(e, f"{path}.filters", ref.filters)


def _timeouts(e: _Errors, path: str, timeouts: HTTPRouteTimeouts) -> None:
    for field, value in (("backendRequest", timeouts.backend_request), ("request", timeouts.request)):
        if value is not None:
            _string(e, f"{path}.{field}", value, pattern=DURATION)
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
        return _parse_go_duration(text), ""
    except _DurationError as exc:
        return None, str(exc)


# ---------------------------------------------------------------------------------------------
# GatewayClass and Gateway (apis/v1/gatewayclass_types.go, gateway_types.go).
# ---------------------------------------------------------------------------------------------

LISTENER_FROM: Final = ("All", "Selector", "Same")
TLS_MODES: Final = ("Terminate", "Passthrough")
MSG_LISTENER_TLS_FORBIDDEN: Final = "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']"
MSG_LISTENER_HTTPS_MODE: Final = "tls mode must be Terminate for protocol HTTPS"
MSG_LISTENER_TLS_MODE: Final = "tls mode must be set for protocol TLS"
MSG_LISTENER_HOSTNAME: Final = "hostname must not be specified for protocols ['TCP', 'UDP']"
MSG_LISTENER_NAME_UNIQUE: Final = "Listener name must be unique within the Gateway"
MSG_LISTENER_COMBINATION: Final = "Combination of port, protocol and hostname must be unique for each listener"
MSG_TLS_CERTS: Final = "certificateRefs or options must be specified when mode is Terminate"
MSG_IP_UNIQUE: Final = "IPAddress values must be unique"
MSG_HOSTNAME_UNIQUE: Final = "Hostname values must be unique"
MSG_ADDRESS_HOSTNAME: Final = (
    f"Hostname value must be empty or contain only valid characters (matching {HOSTNAME.source})"
)


def _admit_gateway_class(gc: GatewayClass) -> list[FieldError]:
    e = _Errors(has_cel=True)  # the CRD has a transition rule, so the CEL gate applies
    _metadata(e, gc, is_dns1123_subdomain, namespaced=False)
    spec = gc.spec
    _string(e, "spec.controllerName", spec.controller_name, min_len=1, max_len=253, pattern=CONTROLLER_NAME)
    if spec.description is not None:
        _string(e, "spec.description", spec.description, max_len=64)
    if spec.parameters_ref is not None:
        ref = spec.parameters_ref
        _group(e, "spec.parametersRef.group", ref.group)
        _kind(e, "spec.parametersRef.kind", ref.kind)
        _object_name(e, "spec.parametersRef.name", ref.name)
        _namespace(e, "spec.parametersRef.namespace", ref.namespace)
    return e.result()


def _admit_gateway(gw: Gateway) -> list[FieldError]:
    e = _Errors(has_cel=True)
    _metadata(e, gw, is_dns1123_subdomain)
    spec = gw.spec
    _object_name(e, "spec.gatewayClassName", spec.gateway_class_name)
    _listeners(e, "spec.listeners", spec.listeners)
    _addresses(e, "spec.addresses", spec.addresses)
    if spec.infrastructure is not None:
        _infrastructure(e, "spec.infrastructure", spec.infrastructure)
    return e.result()


def _listeners(e: _Errors, path: str, listeners: Sequence[Listener]) -> None:
    _items(e, path, listeners, min_items=1, max_items=64)
    _list_map_keys(e, path, [ln.name for ln in listeners])
    for message in _listener_list_violations(listeners):
        e.rule(path, "array", message)
    for i, listener in enumerate(listeners):
        _listener(e, f"{path}[{i}]", listener)


def _listener_list_violations(listeners: Sequence[Listener]) -> list[str]:
    """The listener-list CEL rules in CRD order."""
    out = []
    if any(ln.protocol in ("HTTP", "TCP", "UDP") and ln.tls is not None for ln in listeners):
        out.append(MSG_LISTENER_TLS_FORBIDDEN)
    if any(ln.protocol == "HTTPS" and ln.tls is not None and ln.tls.mode not in ("", "Terminate") for ln in listeners):
        out.append(MSG_LISTENER_HTTPS_MODE)
    if any(ln.protocol == "TLS" and (ln.tls is None or ln.tls.mode == "") for ln in listeners):
        out.append(MSG_LISTENER_TLS_MODE)
    if any(ln.protocol in ("TCP", "UDP") and not _empty(ln.hostname) for ln in listeners):
        out.append(MSG_LISTENER_HOSTNAME)
    if not all(sum(a.name == b.name for b in listeners) == 1 for a in listeners):
        out.append(MSG_LISTENER_NAME_UNIQUE)
    if not all(sum(_same_listener_slot(a, b) for b in listeners) == 1 for a in listeners):
        out.append(MSG_LISTENER_COMBINATION)
    return out


def _same_listener_slot(a: Listener, b: Listener) -> bool:
    same_host = (
        a.hostname == b.hostname
        if a.hostname is not None and b.hostname is not None
        else (a.hostname is None and b.hostname is None)
    )
    return a.port == b.port and a.protocol == b.protocol and same_host


def _listener(e: _Errors, path: str, listener: Listener) -> None:
    _hostname(e, f"{path}.hostname", listener.hostname)
    _section_name(e, f"{path}.name", listener.name)
    _port(e, f"{path}.port", listener.port)
    _string(e, f"{path}.protocol", listener.protocol, min_len=1, max_len=255, pattern=PROTOCOL)
    if listener.tls is not None:
        _listener_tls(e, f"{path}.tls", listener.tls)
    routes = listener.allowed_routes
    _enum(e, f"{path}.allowedRoutes.namespaces.from", routes.namespaces.from_, LISTENER_FROM)
    _items(e, f"{path}.allowedRoutes.kinds", routes.kinds, max_items=8)
    for k, kind in enumerate(routes.kinds):
        _group(e, f"{path}.allowedRoutes.kinds[{k}].group", kind.group)
        _kind(e, f"{path}.allowedRoutes.kinds[{k}].kind", kind.kind)


def _listener_tls(e: _Errors, path: str, tls: GatewayTLSConfig) -> None:
    if tls.mode == "Terminate" and not tls.certificate_refs and not tls.options:
        # size(self.certificateRefs) on an absent field is a CEL evaluation error.
        e.rule(path, "object", f"no such key: certificateRefs evaluating rule: {MSG_TLS_CERTS}")
    _items(e, f"{path}.certificateRefs", tls.certificate_refs, max_items=64)
    for k, ref in enumerate(tls.certificate_refs):
        p = f"{path}.certificateRefs[{k}]"
        _group(e, f"{p}.group", ref.group)
        _kind(e, f"{p}.kind", ref.kind)
        _object_name(e, f"{p}.name", ref.name)
        _namespace(e, f"{p}.namespace", ref.namespace)
    _enum(e, f"{path}.mode", tls.mode, TLS_MODES)
    _max_properties(e, f"{path}.options", tls.options, 16)
    for key in sorted(tls.options):
        _string(e, f"{path}.options.{key}", tls.options[key], max_len=4096)


def _addresses(e: _Errors, path: str, addresses: Sequence[GatewaySpecAddress]) -> None:
    _items(e, path, addresses, max_items=16)
    for kind, message in (("IPAddress", MSG_IP_UNIQUE), ("Hostname", MSG_HOSTNAME_UNIQUE)):
        values = [a.value for a in addresses if a.type == kind]
        if len(values) != len(set(values)):
            e.rule(path, "array", message)
    for i, address in enumerate(addresses):
        _address(e, f"{path}[{i}]", address)


def _address(e: _Errors, path: str, address: GatewaySpecAddress) -> None:
    if address.type == "Hostname" and not HOSTNAME.search(address.value):
        e.rule(path, "object", MSG_ADDRESS_HOSTNAME)
    if address.type == "IPAddress" and not (_is_format_ipv4(address.value) or _is_format_ipv6(address.value)):
        # oneOf[{type: enum [IPAddress], value: anyOf [ipv4, ipv6]}, {type: not enum [IPAddress]}]
        e.invalid("<nil>", "", f'"{path}" must validate one and only one schema (oneOf). Found none valid')
        e.invalid("<nil>", "", f'"{path}.value" must validate at least one schema (anyOf)')
        e.type_invalid(
            f"{path}.value", address.value, f"{path}.value in body must be of type ipv4: {_go_quote(address.value)}"
        )
    _string(e, f"{path}.type", address.type, min_len=1, max_len=253, pattern=ADDRESS_TYPE)
    _string(e, f"{path}.value", address.value, max_len=253)


def _is_format_ipv4(value: str) -> bool:
    """kube-openapi ``ipv4`` format: ParseIPSloppy accepts it and it contains a dot."""
    return _parse_ip(value) is not None and "." in value


def _is_format_ipv6(value: str) -> bool:
    return _parse_ip(value) is not None and ":" in value


def _is_qualified_key(key: str) -> bool:
    return _QUALIFIED_KEY.search(key)


def _short_key_prefix(key: str) -> bool:
    return len(key.split("/")[0]) < 253


_KEY_RULES: Final[tuple[tuple[Callable[[str], bool], str], ...]] = (
    (
        _is_qualified_key,
        "{Kind} keys must be in the form of an optional DNS subdomain prefix followed by a required name segment of "
        "up to 63 characters.",
    ),
    (
        _short_key_prefix,
        "If specified, the {kind} key's prefix must be a DNS subdomain not longer than 253 characters in total.",
    ),
)


def _infrastructure(e: _Errors, path: str, infra: GatewayInfrastructure) -> None:
    for field, mapping, kind in (("annotations", infra.annotations, "annotation"), ("labels", infra.labels, "label")):
        p = f"{path}.{field}"
        _max_properties(e, p, mapping, 8)
        for check, message in _KEY_RULES:
            if not all(check(key) for key in mapping):
                e.rule(p, "object", message.format(Kind=kind.capitalize(), kind=kind))
        for key in sorted(mapping):
            if kind == "label":
                _string(e, f"{p}.{key}", mapping[key], max_len=63, pattern=LABEL_VALUE)
            else:
                _string(e, f"{p}.{key}", mapping[key], max_len=4096)
    if infra.parameters_ref is not None:
        _local_parameters_ref(e, f"{path}.parametersRef", infra.parameters_ref)


def _local_parameters_ref(e: _Errors, path: str, ref: Mapping[str, str]) -> None:
    for field, check in (("group", _group), ("kind", _kind), ("name", _object_name)):
        value = ref.get(field)
        if value is None:
            e.required(f"{path}.{field}")
        else:
            check(e, f"{path}.{field}", value)


# ---------------------------------------------------------------------------------------------
# ReferenceGrant (apis/v1/referencegrant_types.go; v1 and v1beta1 share the schema; no CEL).
# ---------------------------------------------------------------------------------------------


def _admit_reference_grant(grant: ReferenceGrant) -> list[FieldError]:
    e = _Errors(has_cel=False)
    _metadata(e, grant, is_dns1123_subdomain)
    _items(e, "spec.from", grant.spec.from_, min_items=1, max_items=16)
    for i, src in enumerate(grant.spec.from_):
        _group(e, f"spec.from[{i}].group", src.group)
        _kind(e, f"spec.from[{i}].kind", src.kind)
        _namespace(e, f"spec.from[{i}].namespace", src.namespace)
    _items(e, "spec.to", grant.spec.to, min_items=1, max_items=16)
    for i, dst in enumerate(grant.spec.to):
        _group(e, f"spec.to[{i}].group", dst.group)
        _kind(e, f"spec.to[{i}].kind", dst.kind)
        if dst.name is not None:
            _object_name(e, f"spec.to[{i}].name", dst.name)
    return e.result()


# ---------------------------------------------------------------------------------------------
# Core kinds (pkg/apis/core/validation, pkg/apis/discovery/validation).
# ---------------------------------------------------------------------------------------------

PORT_PROTOCOLS: Final = ("SCTP", "TCP", "UDP")
SERVICE_TYPES: Final = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
ADDRESS_TYPES: Final = ("FQDN", "IPv4", "IPv6")
_PORT_RANGE_MSG: Final = "must be between 1 and 65535, inclusive"
_PORT_NAME_CHARS: Final = re.compile(r"[-a-z0-9]+\Z")
_PORT_NAME_LETTER: Final = re.compile(r"[a-z]")


def is_valid_port_name(port: str) -> list[str]:
    """apimachinery ``IsValidPortName`` (IANA_SVC_NAME)."""
    errs = [_max_len_error(15)] if _blen(port) > 15 else []
    if not _PORT_NAME_CHARS.match(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _PORT_NAME_LETTER.search(port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def _port_number(e: _Errors, path: str, value: int) -> None:
    if not 1 <= value <= 65535:
        e.invalid(path, value, _PORT_RANGE_MSG)


def _protocol(e: _Errors, path: str, value: str) -> None:
    if not value:
        e.required(path)
    elif value not in PORT_PROTOCOLS:
        e.not_supported(path, value, PORT_PROTOCOLS)


def _admit_namespace(ns: Namespace) -> list[FieldError]:
    e = _Errors(has_cel=False)
    _metadata(e, ns, is_dns1123_label, namespaced=False)
    return e.result()


def _admit_service(svc: Service) -> list[FieldError]:
    e = _Errors(has_cel=False)
    _metadata(e, svc, is_dns1035_label)
    spec = svc.spec
    # The registry fills an unset clusterIP from clusterIPs[0] before validation.
    headless = (spec.cluster_ip or (spec.cluster_ips[0] if spec.cluster_ips else "")) == "None"
    if not spec.ports and not headless and spec.type != "ExternalName":
        e.required("spec.ports")
    names: set[str] = set()
    for i, port in enumerate(spec.ports):
        _service_port(e, f"spec.ports[{i}]", port, require_name=len(spec.ports) > 1, names=names)
    _enum(e, "spec.type", spec.type, SERVICE_TYPES)
    if spec.type == "ExternalName":
        _external_name(e, spec.external_name)
    _cluster_ips(e, spec.cluster_ip, spec.cluster_ips)
    return e.result()


def _service_port(e: _Errors, path: str, port: ServicePort, *, require_name: bool, names: set[str]) -> None:
    name = port.name or ""
    if require_name and not name:
        e.required(f"{path}.name")
    elif name:
        _each(e, f"{path}.name", name, is_dns1123_label(name))
        if name in names:
            e.duplicate(f"{path}.name", name)
        names.add(name)
    _port_number(e, f"{path}.port", port.port)
    _protocol(e, f"{path}.protocol", port.protocol)
    target = port.target_port
    if target is None or target in (0, ""):  # SetDefaults_Service: targetPort defaults to port
        target = port.port
    if isinstance(target, int):
        _port_number(e, f"{path}.targetPort", target)
    else:
        _each(e, f"{path}.targetPort", target, is_valid_port_name(target))
    if port.app_protocol is not None:
        _each(e, f"{path}.appProtocol", port.app_protocol, is_qualified_name(port.app_protocol))


def _external_name(e: _Errors, external_name: str | None) -> None:
    cname = (external_name or "").removesuffix(".")
    if cname:
        _each(e, "spec.externalName", cname, is_dns1123_subdomain(cname))
    else:
        e.required("spec.externalName")


def _cluster_ips(e: _Errors, cluster_ip: str | None, cluster_ips: Sequence[str]) -> None:
    ips = list(cluster_ips) or ([cluster_ip] if cluster_ip else [])
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                e.invalid("spec.clusterIPs", ips, "'None' must be the first and only value")
            continue
        if _parse_ip(ip) is None:
            e.invalid(f"spec.clusterIPs[{i}]", ip, _VALID_IP_MSG)


def _admit_endpoint_slice(eps: EndpointSlice) -> list[FieldError]:
    e = _Errors(has_cel=False)
    _metadata(e, eps, is_dns1123_subdomain)
    if not eps.address_type:
        e.required("addressType")
    elif eps.address_type not in ADDRESS_TYPES:
        e.not_supported("addressType", eps.address_type, ADDRESS_TYPES)
    if len(eps.endpoints) > 1000:
        e.too_many("endpoints", len(eps.endpoints), 1000)
    else:
        for i, endpoint in enumerate(eps.endpoints):
            _slice_endpoint(e, f"endpoints[{i}]", endpoint, eps.address_type)
    _slice_ports(e, eps.ports)
    return e.result()


def _slice_endpoint(e: _Errors, path: str, endpoint: Endpoint, address_type: str) -> None:
    p = f"{path}.addresses"
    if not endpoint.addresses:
        e.required(p, "must contain at least 1 address")
    elif len(endpoint.addresses) > 100:
        e.too_many(p, len(endpoint.addresses), 100)
    for k, address in enumerate(endpoint.addresses):
        _slice_address(e, f"{p}[{k}]", address, address_type)
    if endpoint.node_name is not None:
        _each(e, f"{path}.nodeName", endpoint.node_name, is_dns1123_subdomain(endpoint.node_name))
    if endpoint.hostname is not None:
        _each(e, f"{path}.hostname", endpoint.hostname, is_dns1123_label(endpoint.hostname))


def _slice_address(e: _Errors, path: str, address: str, address_type: str) -> None:
    ip = _parse_ip(address)
    if address_type == "IPv4" and (ip is None or _ip_to4(ip) is None):
        e.invalid(path, address, "must be a valid IPv4 address")
    elif address_type == "IPv6" and (ip is None or _ip_to4(ip) is not None):
        e.invalid(path, address, "must be a valid IPv6 address")
    elif address_type == "FQDN":
        _fqdn(e, path, address)


def _fqdn(e: _Errors, path: str, name: str) -> None:
    """apimachinery ``IsFullyQualifiedDomainName``."""
    if not name:
        e.required(path)
        return
    name = name.removesuffix(".")
    errs = is_dns1123_subdomain(name)
    if errs:
        e.invalid(path, name, ",".join(errs))
    elif len(name.split(".")) < 2:
        e.invalid(path, name, "should be a domain with at least two segments separated by dots")
    else:
        for label in name.split("."):
            label_errs = is_dns1123_label(label)
            if label_errs:
                e.invalid(path, label, ",".join(label_errs))
                return


def _slice_ports(e: _Errors, ports: Sequence[EndpointPort]) -> None:
    if len(ports) > 20000:
        e.too_many("ports", len(ports), 20000)
        return
    names: set[str] = set()
    for i, port in enumerate(ports):
        name = port.name or ""
        if name:
            _each(e, f"ports[{i}].name", name, is_dns1123_label(name))
        if name in names:
            e.duplicate(f"ports[{i}].name", _Json(name))
        names.add(name)
        _protocol(e, f"ports[{i}].protocol", port.protocol)
        if port.app_protocol is not None:
            _each(e, f"ports[{i}].appProtocol", port.app_protocol, is_qualified_name(port.app_protocol))


def _admit_endpoints(eps: Endpoints) -> list[FieldError]:
    e = _Errors(has_cel=False)
    _metadata(e, eps, is_dns1123_subdomain)
    for i, subset in enumerate(eps.subsets):
        _endpoint_subset(e, f"subsets[{i}]", subset)
    return e.result()


def _endpoint_subset(e: _Errors, path: str, subset: EndpointSubset) -> None:
    if not subset.addresses and not subset.not_ready_addresses:
        e.required(path, "must specify `addresses` or `notReadyAddresses`")
    for field, addresses in (("addresses", subset.addresses), ("notReadyAddresses", subset.not_ready_addresses)):
        for k, address in enumerate(addresses):
            p = f"{path}.{field}[{k}]"
            if _parse_ip(address.ip) is None:
                e.invalid(f"{p}.ip", address.ip, _VALID_IP_MSG)
            if address.hostname:
                _each(e, f"{p}.hostname", address.hostname, is_dns1123_label(address.hostname))
            if address.node_name is not None:
                _each(e, f"{p}.nodeName", address.node_name, is_dns1123_subdomain(address.node_name))
    for k, port in enumerate(subset.ports):
        p = f"{path}.ports[{k}]"
        name = port.name or ""
        if len(subset.ports) > 1 and not name:
            e.required(f"{p}.name")
        elif name:
            _each(e, f"{p}.name", name, is_dns1123_label(name))
        _port_number(e, f"{p}.port", port.port)
        _protocol(e, f"{p}.protocol", port.protocol)
        if port.app_protocol is not None:
            _each(e, f"{p}.appProtocol", port.app_protocol, is_qualified_name(port.app_protocol))
