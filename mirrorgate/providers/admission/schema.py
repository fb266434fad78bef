"""The schema layer of admission: error rendering and collection, CRD patterns, OpenAPI checks.

Rules:
1. ``Errors`` collects errors in the apiserver's order: OpenAPI schema errors and list-type errors
   first, then the CEL rule errors, or instead of them one ``<nil>`` error when a blocking schema
   error exists (Unsupported/Required/Too long/Too many/type-invalid; the apiserver's CEL gate,
   applied only to kinds whose CRD has rules). Exact repeats are dropped, as
   ``field.ErrorList.ToAggregate`` does.
2. A bad value is rendered as ``field.Error`` prints it: strings with Go ``%q``, numbers and
   booleans as Go prints them, ``Json`` values (pointers, maps) with Go ``json.Marshal``.
3. The OpenAPI checks copy kube-openapi's validators and messages: a string is checked for
   maxLength, then minLength, then pattern, stopping at the first failure; patterns are CRD RE2
   patterns searched with Go semantics, and messages quote them as written in the CRD.
4. The typed Gateway API strings (``check_group``, ``check_kind``, ...) are the limits of
   ``shared_types.go`` in the v1.6 standard-channel CRDs.
"""

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from mirrorgate.errors import FieldError
from mirrorgate.gocompat import json_marshal, quote, re2_to_python

# ---------------------------------------------------------------------------------------------
# Rendering: what field.Error.ErrorBody prints for a bad value.
# ---------------------------------------------------------------------------------------------


class Json:
    """A value the apiserver renders with ``json.Marshal`` (pointers, maps) instead of ``%q``."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value


def _render(value: object) -> str:
    if isinstance(value, Json):
        return json_marshal(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return quote(value)
    return json_marshal(value)


# ---------------------------------------------------------------------------------------------
# The error collector: schema errors, list-type errors, CEL errors, and the CEL gate.
# ---------------------------------------------------------------------------------------------

_NOT_CHECKED: Final = FieldError(
    path="<nil>",
    message="Invalid value: null: some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation",
)


class Errors:
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
        values = ", ".join(quote(str(a)) for a in allowed)
        self._add(path, f"Unsupported value: {_render(value)}: supported values: {values}", blocking=True)

    def too_long(self, path: str, max_len: int) -> None:
        unit = "byte" if max_len == 1 else "bytes"
        self._add(path, f"Too long: may not be more than {max_len} {unit}", blocking=True)

    def too_many(self, path: str, actual: int, max_items: int) -> None:
        unit = "item" if max_items == 1 else "items"
        self._add(path, f"Too many: {actual}: must have at most {max_items} {unit}", blocking=True)

    def rule(self, path: str, kind: str, message: str) -> None:
        """A failed CEL rule on a node whose schema type is ``kind`` (object, array, string)."""
        self.cel.append(FieldError(path=path, message=f"Invalid value: {quote(kind)}: {message}"))

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
# Patterns: Go RE2 semantics (MatchString is a search; ``$`` is end of text only; see gocompat).
# ---------------------------------------------------------------------------------------------


class Pattern:
    """A CRD ``pattern`` as written in the CRD (for messages) and compiled with Go semantics."""

    __slots__ = ("regex", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.regex = re.compile(re2_to_python(source))

    def search(self, value: str) -> bool:
        return self.regex.search(value) is not None


DNS_SUBDOMAIN: Final = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
HOSTNAME: Final = Pattern(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
PRECISE_HOSTNAME: Final = Pattern(f"^{DNS_SUBDOMAIN}$")
GROUP: Final = Pattern(f"^$|^{DNS_SUBDOMAIN}$")
KIND: Final = Pattern(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
NAMESPACE: Final = Pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SECTION_NAME: Final = Pattern(f"^{DNS_SUBDOMAIN}$")
HEADER_NAME: Final = Pattern(r"^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$")
DURATION: Final = Pattern(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")
CORS_ORIGIN: Final = Pattern(r"(^\*$)|(^([a-zA-Z][a-zA-Z0-9+\-.]+):\/\/([^:/?#]+)(:([0-9]{1,5}))?$)")
CONTROLLER_NAME: Final = Pattern(f"^{DNS_SUBDOMAIN}" + r"\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$")
ADDRESS_TYPE: Final = Pattern(
    r"^Hostname|IPAddress|NamedAddress|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
    r"\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$"
)
PROTOCOL: Final = Pattern(
    r"^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
    r"\/[A-Za-z0-9]+$"
)
LABEL_VALUE: Final = Pattern(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
PATH_CHARS: Final = Pattern(r"^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$")
QUALIFIED_KEY: Final = Pattern(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$"
)


# ---------------------------------------------------------------------------------------------
# OpenAPI schema checks (kube-openapi validators and their messages).
# ---------------------------------------------------------------------------------------------


def check_string(
    e: Errors, path: str, value: str, *, min_len: int = 0, max_len: int | None = None, pattern: Pattern | None = None
) -> None:
    """maxLength, then minLength, then pattern; the string validator stops at the first failure."""
    if max_len is not None and len(value) > max_len:
        e.too_long(path, max_len)
    elif len(value) < min_len:
        e.invalid(path, value, f"{path} in body should be at least {min_len} chars long")
    elif pattern is not None and not pattern.search(value):
        e.invalid(path, value, f"{path} in body should match '{pattern.source}'")


def check_int_range(e: Errors, path: str, value: int, lo: int | None, hi: int | None) -> None:
    if hi is not None and value > hi:
        e.invalid(path, value, f"{path} in body should be less than or equal to {hi}")
    if lo is not None and value < lo:
        e.invalid(path, value, f"{path} in body should be greater than or equal to {lo}")


def check_enum(e: Errors, path: str, value: object, allowed: Sequence[object]) -> None:
    if value not in allowed:
        e.not_supported(path, value, allowed)


def check_items(
    e: Errors, path: str, items: Sequence[object], *, max_items: int | None = None, min_items: int = 0
) -> None:
    if len(items) < min_items:
        e.invalid(path, len(items), f"{path} in body should have at least {min_items} items")
    if max_items is not None and len(items) > max_items:
        e.too_many(path, len(items), max_items)


def check_max_properties(e: Errors, path: str, mapping: Mapping[str, str], max_props: int) -> None:
    if len(mapping) > max_props:
        e.too_many(path, len(mapping), max_props)


def check_list_map_keys(e: Errors, path: str, keys: Sequence[str], key_name: str = "name") -> None:
    """``x-kubernetes-list-type: map``: the second occurrence of each key is a duplicate."""
    counts: dict[str, int] = {}
    for i, key in enumerate(keys):
        counts[key] = counts.get(key, 0) + 1
        if counts[key] == 2:
            e.duplicate(f"{path}[{i}]", Json({key_name: key}))


def check_list_set(e: Errors, path: str, values: Sequence[str]) -> None:
    """``x-kubernetes-list-type: set``."""
    counts: dict[str, int] = {}
    for i, value in enumerate(values):
        counts[value] = counts.get(value, 0) + 1
        if counts[value] == 2:
            e.duplicate(f"{path}[{i}]", value)


# Typed Gateway API strings (shared_types.go).


def check_group(e: Errors, path: str, value: str) -> None:
    check_string(e, path, value, max_len=253, pattern=GROUP)


def check_kind(e: Errors, path: str, value: str) -> None:
    check_string(e, path, value, min_len=1, max_len=63, pattern=KIND)


def check_object_name(e: Errors, path: str, value: str) -> None:
    check_string(e, path, value, min_len=1, max_len=253)


def check_namespace(e: Errors, path: str, value: str | None) -> None:
    if value is not None:
        check_string(e, path, value, min_len=1, max_len=63, pattern=NAMESPACE)


def check_section_name(e: Errors, path: str, value: str | None) -> None:
    if value is not None:
        check_string(e, path, value, min_len=1, max_len=253, pattern=SECTION_NAME)


def check_hostname(e: Errors, path: str, value: str | None, pattern: Pattern = HOSTNAME) -> None:
    if value is not None:
        check_string(e, path, value, min_len=1, max_len=253, pattern=pattern)


def check_header_name(e: Errors, path: str, value: str) -> None:
    check_string(e, path, value, min_len=1, max_len=256, pattern=HEADER_NAME)


def check_port(e: Errors, path: str, value: int | None) -> None:
    if value is not None:
        check_int_range(e, path, value, 1, 65535)


def is_empty(value: str | None) -> bool:
    """An optional string that is absent or ``""`` (CEL's ``!has(x) || x == ''``)."""
    return value is None or value == ""
