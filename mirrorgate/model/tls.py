"""TLS material and policy: Secret and ConfigMap (v1), BackendTLSPolicy (gateway.networking.k8s.io/v1).

Rules:
1. A Secret's ``data`` holds base64 strings and ``stringData`` plain ones; ``values()`` merges them
   as the apiserver does on write (a key in both: ``stringData`` wins).
2. A Secret's or a ConfigMap's ``repr`` never shows its data: a Secret carries private keys, and
   a model object can end up in a log line or an error message.
3. BackendTLSPolicy follows the v1.6 standard-channel CRD (``apis/v1/backendtlspolicy_types.go``):
   ``targetRefs`` are local references (group, kind, name, optional ``sectionName``),
   ``validation`` names the CA (``caCertificateRefs`` or ``wellKnownCACertificates``), the SNI
   ``hostname`` and optional ``subjectAltNames``.
"""

import base64
import binascii

import msgspec

from mirrorgate.model.meta import Resource, Spec

TLS_SECRET_TYPE = "kubernetes.io/tls"


class Secret(Resource, frozen=True, kw_only=True):
    """``v1 Secret``: ``type``, ``data`` (base64) and ``stringData`` at the top level."""

    type: str = "Opaque"
    data: dict[str, str] = msgspec.field(default_factory=dict)
    string_data: dict[str, str] = msgspec.field(default_factory=dict)
    immutable: bool | None = None

    def values(self) -> dict[str, bytes]:
        """Every key's bytes, ``stringData`` over ``data``; a ``data`` value that is not base64 is left out
        (admission refuses such a Secret first)."""
        out = {}
        for key, text in self.data.items():
            try:
                out[key] = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                continue
        out.update((key, text.encode()) for key, text in self.string_data.items())
        return out

    def __repr__(self) -> str:
        return f"Secret({self.metadata.namespace}/{self.metadata.name}, type={self.type!r}, data=<redacted>)"

    __str__ = __repr__


class ConfigMap(Resource, frozen=True, kw_only=True):
    """``v1 ConfigMap``: ``data`` (text) and ``binaryData`` (base64) at the top level."""

    data: dict[str, str] = msgspec.field(default_factory=dict)
    binary_data: dict[str, str] = msgspec.field(default_factory=dict)
    immutable: bool | None = None

    def __repr__(self) -> str:
        return f"ConfigMap({self.metadata.namespace}/{self.metadata.name}, data=<redacted>)"

    __str__ = __repr__


class PolicyTargetReference(Spec, frozen=True, kw_only=True):
    """``LocalPolicyTargetReferenceWithSectionName``: ``sectionName`` is a Service port name."""

    group: str
    kind: str
    name: str
    section_name: str | None = None


class LocalObjectReference(Spec, frozen=True, kw_only=True):
    group: str
    kind: str
    name: str


class SubjectAltName(Spec, frozen=True, kw_only=True):
    type: str
    hostname: str | None = None
    uri: str | None = None


class BackendTLSPolicyValidation(Spec, frozen=True, kw_only=True):
    hostname: str
    ca_certificate_refs: tuple[LocalObjectReference, ...] = msgspec.field(default=(), name="caCertificateRefs")
    well_known_ca_certificates: str | None = msgspec.field(default=None, name="wellKnownCACertificates")
    subject_alt_names: tuple[SubjectAltName, ...] = ()


class BackendTLSPolicySpec(Spec, frozen=True, kw_only=True):
    target_refs: tuple[PolicyTargetReference, ...]
    validation: BackendTLSPolicyValidation
    options: dict[str, str] = msgspec.field(default_factory=dict)


class BackendTLSPolicy(Resource, frozen=True, kw_only=True):
    spec: BackendTLSPolicySpec
