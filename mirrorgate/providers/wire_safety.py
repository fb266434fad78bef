"""Wire safety: values a filter puts on the wire must not carry control characters.

The Gateway API CRDs only length-check HTTPHeader values and path modifiers, so an apiserver
admits ``"a\\r\\nX-Evil: 1"``; sent as configured it would split a header or the request line
(header and request smuggling through configuration). RFC 9110 §5.5 allows no control character
in a field value but HTAB (``field-vchar``, SP, HTAB, obs-text), and RFC 3986 none in a path; a
value that is not valid Unicode (an unpaired surrogate) cannot be encoded at all. mirrorgate
rejects such an object at load, like an admission error, with the field path. This is stricter
than the apiserver on purpose.
"""

import json
import re

from mirrorgate.errors import FieldError
from mirrorgate.model.httproute import HTTPHeaderFilter, HTTPPathModifier, HTTPRoute, HTTPRouteFilter
from mirrorgate.model.meta import Resource
from mirrorgate.model.mirrorpolicy import MirrorPolicy

# C0 controls but HTAB, DEL, and the surrogate range (unpaired surrogates are not encodable).
_FORBIDDEN = re.compile("[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")
MESSAGE = (
    "must not contain control characters other than HTAB (CR, LF, NUL, ...) or unpaired surrogates "
    "(mirrorgate sends this value on the wire)"
)


def wire_problems(obj: Resource) -> list[FieldError]:
    """Every filter value of an HTTPRoute, or header value of a MirrorPolicy's
    ``requestHeaderModifier``, that would inject bytes into a head."""
    if isinstance(obj, MirrorPolicy):
        mod = obj.spec.request_header_modifier
        return _headers("spec.requestHeaderModifier", mod) if mod is not None else []
    if not isinstance(obj, HTTPRoute):
        return []
    out: list[FieldError] = []
    for i, rule in enumerate(obj.spec.rules):
        for j, f in enumerate(rule.filters):
            out += _filter(f"spec.rules[{i}].filters[{j}]", f)
        for k, ref in enumerate(rule.backend_refs):
            for j, f in enumerate(ref.filters):
                out += _filter(f"spec.rules[{i}].backendRefs[{k}].filters[{j}]", f)
    return out


def _filter(path: str, f: HTTPRouteFilter) -> list[FieldError]:
    out: list[FieldError] = []
    for field, mod in (
        ("requestHeaderModifier", f.request_header_modifier),
        ("responseHeaderModifier", f.response_header_modifier),
    ):
        if mod is not None:
            out += _headers(f"{path}.{field}", mod)
    for field, modifier in (
        ("urlRewrite.path", f.url_rewrite.path if f.url_rewrite else None),
        ("requestRedirect.path", f.request_redirect.path if f.request_redirect else None),
    ):
        if modifier is not None:
            out += _path(f"{path}.{field}", modifier)
    return out


def _headers(path: str, mod: HTTPHeaderFilter) -> list[FieldError]:
    return [
        _bad(f"{path}.{verb}[{n}].value", h.value)
        for verb, headers in (("set", mod.set), ("add", mod.add))
        for n, h in enumerate(headers)
        if _unsafe(h.value)
    ]


def _path(path: str, modifier: HTTPPathModifier) -> list[FieldError]:
    out = []
    if modifier.replace_full_path is not None and _unsafe(modifier.replace_full_path):
        out.append(_bad(f"{path}.replaceFullPath", modifier.replace_full_path))
    if modifier.replace_prefix_match is not None and _unsafe(modifier.replace_prefix_match):
        out.append(_bad(f"{path}.replacePrefixMatch", modifier.replace_prefix_match))
    return out


def _unsafe(value: str) -> bool:
    return _FORBIDDEN.search(value) is not None


def _bad(path: str, value: str) -> FieldError:
    return FieldError(path=path, message=f"Invalid value: {json.dumps(value)}: {MESSAGE}")
