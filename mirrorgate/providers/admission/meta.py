"""Metadata admission: ``ValidateObjectMeta`` and the name validators of ``k8s.io/apimachinery``.

Rules:
1. Every kind: ``metadata.name`` follows the kind's name rule (DNS-1123 subdomain; Service a
   DNS-1035 label; Namespace a DNS-1123 label), ``metadata.namespace`` is a DNS-1123 label,
   label keys are qualified names and label values valid label values, annotation keys
   (lower-cased) are qualified names and all annotations together are at most 256 KiB.
2. The ``is_*`` validators return apimachinery's messages byte for byte (``RegexError`` with its
   examples, "must be no more than N characters"); lengths count UTF-8 bytes, as Go does.
"""

import re
from collections.abc import Callable, Iterable
from typing import Final

from mirrorgate.model.meta import Resource
from mirrorgate.providers.admission.schema import DNS_SUBDOMAIN, Errors

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
_DNS1123_SUBDOMAIN_FMT: Final = DNS_SUBDOMAIN
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


def max_len_error(n: int) -> str:
    """apimachinery ``MaxLenError``."""
    return f"must be no more than {n} characters"


def byte_len(value: str) -> int:
    """The length Go sees: UTF-8 bytes."""
    return len(value.encode("utf-8", "surrogatepass"))


def is_dns1123_label(value: str) -> list[str]:
    errs = [max_len_error(63)] if byte_len(value) > 63 else []
    if not _DNS1123_LABEL_RE.match(value):
        if _DNS1123_SUBDOMAIN_RE.match(value):
            errs.append("must not contain dots")
        else:
            errs.append(_regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    errs = [max_len_error(253)] if byte_len(value) > 253 else []
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(_regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    errs = [max_len_error(63)] if byte_len(value) > 63 else []
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
    elif byte_len(name) > 63:
        errs.append("name part " + max_len_error(63))
    if not _QUALIFIED_NAME_RE.match(name):
        errs.append(
            "name part " + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def is_label_value(value: str) -> list[str]:
    errs = [max_len_error(63)] if byte_len(value) > 63 else []
    if not _LABEL_VALUE_RE.match(value):
        errs.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def invalid_each(e: Errors, path: str, value: str, messages: Iterable[str]) -> None:
    """One ``Invalid value`` error per validator message, as ``field.Invalid`` in a loop."""
    for msg in messages:
        e.invalid(path, value, msg)


_ANNOTATIONS_LIMIT: Final = 256 * 1024


def check_metadata(e: Errors, obj: Resource, name_rule: Callable[[str], list[str]], *, namespaced: bool = True) -> None:
    """``ValidateObjectMeta``: name by ``name_rule``, namespace, labels, annotations (rule 1)."""
    meta = obj.metadata
    if meta.name:
        invalid_each(e, "metadata.name", meta.name, name_rule(meta.name))
    if namespaced and meta.namespace:
        invalid_each(e, "metadata.namespace", meta.namespace, is_dns1123_label(meta.namespace))
    for key in sorted(meta.labels):
        invalid_each(e, "metadata.labels", key, is_qualified_name(key))
        invalid_each(e, "metadata.labels", meta.labels[key], is_label_value(meta.labels[key]))
    size = 0
    for key in sorted(meta.annotations):
        invalid_each(e, "metadata.annotations", key, is_qualified_name(key.lower()))
        size += byte_len(key) + byte_len(meta.annotations[key])
    if size > _ANNOTATIONS_LIMIT:
        e.too_long("metadata.annotations", _ANNOTATIONS_LIMIT)
