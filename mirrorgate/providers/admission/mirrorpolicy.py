"""MirrorPolicy (``mirrorgate.dev/v1alpha1``) admission: the schema and CEL rules of its CRD.

The CRD is ``deploy/kubernetes/crds/mirrorgate.dev_mirrorpolicies.yaml``; every limit, pattern
and rule message here is written there too (``tests/deploy`` checks that they agree).

Rules:
1. ``backendRef`` is a ``BackendObjectReference`` (RequestMirror's rules, Service port included);
   ``percent`` 0..100; ``fraction`` with ``denominator`` >= 1, ``numerator`` >= 0 and
   ``numerator <= denominator``; ``percent`` and ``fraction`` together: refused (as RequestMirror).
2. ``sampleBy``: exactly one of ``header`` (an HTTP header name), ``cookie`` (an RFC 6265
   ``cookie-name``: an RFC 2616 token, the same characters as a header name) or ``queryParam``
   (named as Gateway API query matches are, ``HTTPHeaderName``); ``missing`` Random or Skip.
3. ``host``: ``type`` Original, ShadowSuffix or Literal; ``value`` set exactly when Literal, a
   lower-case DNS name with an optional ``:port`` (1..65535).
4. ``requestHeaderModifier``: an ``HTTPHeaderFilter`` with the HTTPRoute filter's rules.
5. ``timeout``: a GEP-2257 duration greater than 0s and at most ``MAX_TIMEOUT`` (1h) (CEL
   ``duration()``): a mirror is a test copy, never a long-running call.
6. ``maxBodyLag``: an integer >= 1 or a quantity string ``<n>[Ki|Mi|Gi|k|M|G]`` with n >= 1, at
   most ``MAX_BODY_LAG`` (1Gi) bytes: an integer by the schema's ``maximum``, a string by a CEL
   rule whose regular expression (``LAG_AT_MOST``, made by ``at_most``) accepts exactly the
   quantities up to it (CEL in the API server has no quantity arithmetic on int-or-string).
7. ``compare``: ``headers``, ``ignoreHeaders`` and ``redactHeaders`` are sets of at most 64 header
   names; ``ignorePaths`` a set of at most 64 JSON paths (``$`` then ``.name``, ``[n]``, ``[*]`` or
   ``['quoted name']`` steps); ``maxBodyBytes`` 1..16Mi; ``keepMismatches`` 1..1000.
"""

import re
from typing import Final

from mirrorgate.errors import FieldError
from mirrorgate.gocompat import DurationError, parse_duration_ns
from mirrorgate.model.meta import QUANTITY_UNITS
from mirrorgate.model.mirrorpolicy import HOST_TYPES, SAMPLE_MISSING, MirrorCompareSpec, MirrorPolicy, MirrorSampleBy
from mirrorgate.providers.admission.filters import check_header_filter, check_mirror
from mirrorgate.providers.admission.meta import check_metadata, is_dns1123_subdomain
from mirrorgate.providers.admission.schema import (
    DURATION,
    Errors,
    Pattern,
    check_enum,
    check_header_name,
    check_int_range,
    check_items,
    check_list_set,
    check_string,
    is_empty,
)

MAX_BODY_BYTES: Final = 16 * 1024 * 1024
MAX_TIMEOUT: Final = "1h"
MAX_TIMEOUT_NS: Final = 3600 * 10**9
MAX_BODY_LAG: Final = 1 << 30  # 1Gi
LAG_UNITS: Final = (("", 1), *QUANTITY_UNITS.items())


def at_most(n: int) -> str:
    """A regular expression (RE2 and Python) of the decimal integers 1..``n`` (no leading zero)."""
    digits = str(n)
    alternatives = []
    if len(digits) > 1:
        alternatives.append("[1-9]" + (f"[0-9]{{0,{len(digits) - 2}}}" if len(digits) > 2 else ""))
    for i, d in enumerate(digits):
        low = 1 if i == 0 else 0
        top = int(d) - 1
        if top < low:
            continue
        rest = len(digits) - i - 1
        span = str(low) if top == low else f"[{low}-{top}]"
        alternatives.append(digits[:i] + span + (f"[0-9]{{{rest}}}" if rest > 1 else "[0-9]" if rest else ""))
    alternatives.append(digits)
    return "(" + "|".join(alternatives) + ")"


LAG_AT_MOST: Final = "^(" + "|".join(at_most(MAX_BODY_LAG // unit) + suffix for suffix, unit in LAG_UNITS) + ")$"
MAX_LIST: Final = 64
HOST_PORT: Final = Pattern(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
    r"(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?$"
)
QUANTITY: Final = Pattern(r"^[1-9][0-9]*(Ki|Mi|Gi|k|M|G)?$")
JSON_PATH: Final = Pattern(r"^\$(\.[A-Za-z_][A-Za-z0-9_-]*|\[([0-9]+|\*|'([^'\\]|\\.)*')\])*$")

MSG_PERCENT_AND_FRACTION: Final = "Only one of percent or fraction may be specified in MirrorPolicy"
MSG_SAMPLE_ONE: Final = "exactly one of header, cookie or queryParam must be set"
MSG_HOST_VALUE: Final = "value must be set when type is Literal"
MSG_HOST_NO_VALUE: Final = "value must not be set unless type is Literal"
MSG_TIMEOUT: Final = "timeout must be greater than 0s"
MSG_TIMEOUT_MAX: Final = "timeout must be at most 1h"
MSG_LAG_MAX: Final = "maxBodyLag must be at most 1Gi (1073741824 bytes)"


def admit_mirror_policy(policy: MirrorPolicy) -> list[FieldError]:
    """Every violation of one MirrorPolicy (rules 1-7), in the apiserver's order."""
    e = Errors(has_cel=True)
    check_metadata(e, policy, is_dns1123_subdomain)
    spec, path = policy.spec, "spec"
    check_mirror(e, path, spec, MSG_PERCENT_AND_FRACTION)
    if spec.sample_by is not None:
        _sample_by(e, f"{path}.sampleBy", spec.sample_by)
    if spec.host is not None:
        p, host = f"{path}.host", spec.host
        check_enum(e, f"{p}.type", host.type, HOST_TYPES)
        if host.value is not None:
            check_string(e, f"{p}.value", host.value, min_len=1, max_len=259, pattern=HOST_PORT)
        if host.type == "Literal" and is_empty(host.value):
            e.rule(p, "object", MSG_HOST_VALUE)
        if host.type != "Literal" and host.value is not None:
            e.rule(p, "object", MSG_HOST_NO_VALUE)
    if spec.request_header_modifier is not None:
        check_header_filter(e, f"{path}.requestHeaderModifier", spec.request_header_modifier)
    if spec.timeout is not None:
        _timeout(e, f"{path}.timeout", spec.timeout)
    if isinstance(spec.max_body_lag, int):
        check_int_range(e, f"{path}.maxBodyLag", spec.max_body_lag, 1, MAX_BODY_LAG)
    elif spec.max_body_lag is not None:
        lag = spec.max_body_lag
        check_string(e, f"{path}.maxBodyLag", lag, pattern=QUANTITY)
        if not re.match(LAG_AT_MOST, lag):  # the CEL rule runs whatever the pattern said
            e.rule(f"{path}.maxBodyLag", "", MSG_LAG_MAX)
    if spec.compare is not None:
        _compare(e, f"{path}.compare", spec.compare)
    return e.result()


def _sample_by(e: Errors, path: str, s: MirrorSampleBy) -> None:
    keys = (("header", s.header), ("cookie", s.cookie), ("queryParam", s.query_param))
    for field, value in keys:
        if value is not None:
            check_header_name(e, f"{path}.{field}", value)
    check_enum(e, f"{path}.missing", s.missing, SAMPLE_MISSING)
    if sum(value is not None for _, value in keys) != 1:
        e.rule(path, "object", MSG_SAMPLE_ONE)


def _timeout(e: Errors, path: str, text: str) -> None:
    check_string(e, path, text, pattern=DURATION)
    try:
        ns = parse_duration_ns(text)
    except DurationError as exc:  # CEL duration() fails: reported as each rule's evaluation error
        e.rule(path, "string", f"{exc} evaluating rule: {MSG_TIMEOUT}")
        e.rule(path, "string", f"{exc} evaluating rule: {MSG_TIMEOUT_MAX}")
        return
    if ns <= 0:
        e.rule(path, "string", MSG_TIMEOUT)
    if ns > MAX_TIMEOUT_NS:
        e.rule(path, "string", MSG_TIMEOUT_MAX)


def _compare(e: Errors, path: str, c: MirrorCompareSpec) -> None:
    for field, names in (("headers", c.headers), ("ignoreHeaders", c.ignore_headers)):
        _header_set(e, f"{path}.{field}", names)
    p = f"{path}.ignorePaths"
    check_items(e, p, c.ignore_paths, max_items=MAX_LIST)
    check_list_set(e, p, c.ignore_paths)
    for i, json_path in enumerate(c.ignore_paths):
        check_string(e, f"{p}[{i}]", json_path, min_len=1, max_len=1024, pattern=JSON_PATH)
    check_int_range(e, f"{path}.maxBodyBytes", c.max_body_bytes, 1, MAX_BODY_BYTES)
    _header_set(e, f"{path}.redactHeaders", c.redact_headers)
    check_int_range(e, f"{path}.keepMismatches", c.keep_mismatches, 1, 1000)


def _header_set(e: Errors, path: str, names: tuple[str, ...]) -> None:
    check_items(e, path, names, max_items=MAX_LIST)
    check_list_set(e, path, names)
    for i, name in enumerate(names):
        check_header_name(e, f"{path}[{i}]", name)
