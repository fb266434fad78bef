"""Secret, ConfigMap (core v1) and BackendTLSPolicy (gateway.networking.k8s.io/v1) admission.

Rules:
1. Secret and ConfigMap (``k8s.io/kubernetes/pkg/apis/core/validation``): every key of ``data``
   (and ``stringData``, ``binaryData``) is a config key (``[-._a-zA-Z0-9]+``, not ``.`` or ``..``);
   a ``data`` value must be base64 (the apiserver cannot decode the object otherwise); a Secret of
   type ``kubernetes.io/tls`` needs both ``tls.crt`` and ``tls.key``; a ConfigMap key is in
   ``data`` or ``binaryData``, not both. Error messages never quote a value.
2. BackendTLSPolicy (v1.6 standard CRD): 1 to 16 ``targetRefs`` with the two ``sectionName`` CEL
   rules on the list; ``validation`` with at most 8 ``caCertificateRefs``,
   ``wellKnownCACertificates`` ``System``, a precise ``hostname``, at most 5 ``subjectAltNames``
   (type Hostname or URI, with the four CEL rules on each entry), the two CA CEL rules on
   ``validation``; at most 16 ``options``.
"""

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from typing import Final

from mirrorgate.errors import FieldError
from mirrorgate.model.tls import (
    TLS_SECRET_TYPE,
    BackendTLSPolicy,
    ConfigMap,
    PolicyTargetReference,
    Secret,
    SubjectAltName as SanSpec,
)
from mirrorgate.providers.admission.meta import check_metadata, is_dns1123_subdomain
from mirrorgate.providers.admission.schema import (
    HOSTNAME,
    PRECISE_HOSTNAME,
    Errors,
    Pattern,
    check_enum,
    check_group,
    check_hostname,
    check_items,
    check_kind,
    check_max_properties,
    check_section_name,
    check_string,
    is_empty,
)

CONFIG_KEY: Final = re.compile(r"^[-._a-zA-Z0-9]+$")
MSG_CONFIG_KEY: Final = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
    "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)
ABSOLUTE_URI: Final = Pattern(r"^(([^:/?#]+):)(//([^/?#]*))([^?#]*)(\?([^#]*))?(#(.*))?")
MSG_SECTION_REQUIRED: Final = (
    "sectionName must be specified when targetRefs includes 2 or more references to the same target"
)
MSG_SECTION_UNIQUE: Final = (
    "sectionName must be unique when targetRefs includes 2 or more references to the same target"
)
MSG_CA_BOTH: Final = "must not contain both CACertificateRefs and WellKnownCACertificates"
MSG_CA_EITHER: Final = "must specify either CACertificateRefs or WellKnownCACertificates"
SAN_RULES: Final = (
    ("Hostname", "hostname", "SubjectAltName element must contain Hostname, if Type is set to Hostname"),
    ("URI", "uri", "SubjectAltName element must contain URI, if Type is set to URI"),
)


def admit_secret(secret: Secret) -> list[FieldError]:
    """Secret (rule 1)."""
    e = Errors(has_cel=False)
    check_metadata(e, secret, is_dns1123_subdomain)
    _config_keys(e, "data", secret.data)
    _config_keys(e, "stringData", secret.string_data)
    for key in sorted(secret.data):
        if (problem := _base64_problem(secret.data[key])) is not None:
            e.invalid(f"data[{key}]", "<redacted>", problem)
    if secret.type == TLS_SECRET_TYPE:
        present = set(secret.data) | set(secret.string_data)
        for key in ("tls.crt", "tls.key"):
            if key not in present:
                e.required(f"data[{key}]")
    return e.result()


def admit_config_map(cm: ConfigMap) -> list[FieldError]:
    """ConfigMap (rule 1)."""
    e = Errors(has_cel=False)
    check_metadata(e, cm, is_dns1123_subdomain)
    _config_keys(e, "data", cm.data)
    _config_keys(e, "binaryData", cm.binary_data)
    for key in sorted(set(cm.data) & set(cm.binary_data)):
        e.invalid(f"data[{key}]", key, "duplicate of key present in binaryData")
    return e.result()


def _config_keys(e: Errors, path: str, mapping: Mapping[str, str]) -> None:
    for key in sorted(mapping):
        if not CONFIG_KEY.match(key):
            e.invalid(f"{path}[{key}]", key, MSG_CONFIG_KEY)
        elif key in (".", ".."):
            e.invalid(f"{path}[{key}]", key, f"must not be '{key}'")


def _base64_problem(text: str) -> str | None:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        bad = next((i for i, c in enumerate(text) if not (c.isascii() and (c.isalnum() or c in "+/="))), len(text))
        return f"illegal base64 data at input byte {bad}"
    return None


def admit_backend_tls_policy(policy: BackendTLSPolicy) -> list[FieldError]:
    """BackendTLSPolicy (rule 2)."""
    e = Errors(has_cel=True)
    check_metadata(e, policy, is_dns1123_subdomain)
    spec = policy.spec
    _target_refs(e, "spec.targetRefs", spec.target_refs)
    v, path = spec.validation, "spec.validation"
    check_items(e, f"{path}.caCertificateRefs", v.ca_certificate_refs, max_items=8)
    for i, ref in enumerate(v.ca_certificate_refs):
        _local_ref(e, f"{path}.caCertificateRefs[{i}]", ref.group, ref.kind, ref.name)
    if v.well_known_ca_certificates is not None:
        check_enum(e, f"{path}.wellKnownCACertificates", v.well_known_ca_certificates, ("System",))
    check_hostname(e, f"{path}.hostname", v.hostname, PRECISE_HOSTNAME)
    check_items(e, f"{path}.subjectAltNames", v.subject_alt_names, max_items=5)
    for i, san in enumerate(v.subject_alt_names):
        _subject_alt_name(e, f"{path}.subjectAltNames[{i}]", san)
    has_refs, has_known = bool(v.ca_certificate_refs), not is_empty(v.well_known_ca_certificates)
    if has_refs and has_known:
        e.rule(path, "object", MSG_CA_BOTH)
    if not (has_refs or has_known):
        e.rule(path, "object", MSG_CA_EITHER)
    check_max_properties(e, "spec.options", spec.options, 16)
    return e.result()


def _target_refs(e: Errors, path: str, refs: Sequence[PolicyTargetReference]) -> None:
    check_items(e, path, refs, min_items=1, max_items=16)
    for i, ref in enumerate(refs):
        _local_ref(e, f"{path}[{i}]", ref.group, ref.kind, ref.name)
        check_section_name(e, f"{path}[{i}].sectionName", ref.section_name)

    def same(a: PolicyTargetReference, b: PolicyTargetReference) -> bool:
        return (a.group, a.kind, a.name) == (b.group, b.kind, b.name)

    if not all(is_empty(a.section_name) == is_empty(b.section_name) for a in refs for b in refs if same(a, b)):
        e.rule(path, "array", MSG_SECTION_REQUIRED)
    if not all(sum(same(a, b) and _same_section(a, b) for b in refs) == 1 for a in refs):
        e.rule(path, "array", MSG_SECTION_UNIQUE)


def _same_section(a: PolicyTargetReference, b: PolicyTargetReference) -> bool:
    if is_empty(a.section_name) and is_empty(b.section_name):
        return True
    return a.section_name is not None and b.section_name is not None and a.section_name == b.section_name


def _local_ref(e: Errors, path: str, group: str, kind: str, name: str) -> None:
    check_group(e, f"{path}.group", group)
    check_kind(e, f"{path}.kind", kind)
    check_string(e, f"{path}.name", name, min_len=1, max_len=253)


def _subject_alt_name(e: Errors, path: str, san: SanSpec) -> None:
    check_enum(e, f"{path}.type", san.type, ("Hostname", "URI"))
    if san.hostname is not None:
        check_hostname(e, f"{path}.hostname", san.hostname, HOSTNAME)
    if san.uri is not None:
        check_string(e, f"{path}.uri", san.uri, min_len=1, max_len=253, pattern=ABSOLUTE_URI)
    for san_type, field, must in SAN_RULES:
        value = san.hostname if field == "hostname" else san.uri
        if san.type == san_type and is_empty(value):
            e.rule(path, "object", must)
        if san.type != san_type and not is_empty(value):
            e.rule(path, "object", must.replace("must contain", "must not contain").replace(" is set", " is not set"))
