"""HTTPS listeners' ``tls.certificateRefs`` -> validated certificates (Gateway API ``GatewayTLSConfig``).

Rules:
1. A ref resolves when it names a core ``Secret`` (group "", kind Secret), in the Gateway's
   namespace or in another one whose ReferenceGrant lets Gateways of this namespace name it
   (else ``RefNotPermitted``), that exists, is of type ``kubernetes.io/tls``, and whose
   ``tls.crt``/``tls.key`` pass ``tls.certs.parse_tls_secret`` (PEM, a supported key that matches
   the leaf). Anything else is ``InvalidCertificateRef``, with a message naming the Secret and
   the fault, never the key.
2. A listener with at least one resolved ref is served with those certificates (the others make
   ``ResolvedRefs`` False); with none it is not served (``Programmed`` False).
3. Certificates are named by digest; two Secrets with the same pair are one certificate, with the
   source of the first (in reference order) that names it.
"""

import msgspec

from mirrorgate.ir.table import Certificate
from mirrorgate.model.gateway import Gateway, Listener, SecretObjectReference
from mirrorgate.model.tls import TLS_SECRET_TYPE
from mirrorgate.tls.certs import InvalidCertificate, parse_tls_secret
from mirrorgate.translate.index import Index
from mirrorgate.translate.refs import reference_permitted
from mirrorgate.translate.status import Reason


class ListenerCertificates(msgspec.Struct, frozen=True, kw_only=True):
    """What a listener's certificateRefs resolved to: the certificates, and the faults (reason, message)."""

    certificates: tuple[Certificate, ...] = ()
    faults: tuple[tuple[Reason, str], ...] = ()

    @property
    def reason(self) -> Reason:
        return self.faults[0][0] if self.faults else Reason.RESOLVED_REFS

    @property
    def message(self) -> str:
        return "; ".join(message for _, message in self.faults)


def listener_certificates(ix: Index, gw: Gateway, ln: Listener) -> ListenerCertificates:
    """Resolve every certificateRef of one HTTPS listener (rules 1 and 2)."""
    refs = ln.tls.certificate_refs if ln.tls is not None else ()
    if not refs:
        return ListenerCertificates(
            faults=((Reason.INVALID_CERTIFICATE_REF, "HTTPS listener has no tls.certificateRefs"),)
        )
    found: list[Certificate] = []
    faults: list[tuple[Reason, str]] = []
    for ref in refs:
        got = resolve_certificate(ix, gw.metadata.namespace, ref)
        if isinstance(got, Certificate):
            found.append(got)
        else:
            faults.append(got)
    return ListenerCertificates(certificates=tuple(found), faults=tuple(faults))


def resolve_certificate(ix: Index, gw_ns: str, ref: SecretObjectReference) -> Certificate | tuple[Reason, str]:
    """One certificateRef: the certificate, or (reason, message)."""
    ns = ref.namespace or gw_ns
    where = f"Secret {ns}/{ref.name}"
    if (ref.group, ref.kind) != ("", "Secret"):
        return Reason.INVALID_CERTIFICATE_REF, f"Unsupported certificateRef kind {ref.kind!r} in group {ref.group!r}"
    if not reference_permitted(
        ix.grants.get(ns, ()),
        from_namespace=gw_ns,
        from_kind="Gateway",
        to_group="",
        to_kind="Secret",
        to_namespace=ns,
        to_name=ref.name,
    ):
        return Reason.REF_NOT_PERMITTED, f"Certificate ref to {where} not permitted by any ReferenceGrant"
    found = ix.pairs.get((ns, ref.name))
    if found is None:
        found = ix.pairs[(ns, ref.name)] = _secret_pair(ix, ns, ref.name)
    return found


def _secret_pair(ix: Index, ns: str, name: str) -> Certificate | tuple[Reason, str]:
    """The Secret's validated pair, or (InvalidCertificateRef, what is wrong)."""
    where = f"Secret {ns}/{name}"
    secret = ix.secrets.get((ns, name))
    if secret is None:
        return Reason.INVALID_CERTIFICATE_REF, f"{where} not found"
    if secret.type != TLS_SECRET_TYPE:
        return Reason.INVALID_CERTIFICATE_REF, f"{where} is of type {secret.type!r}, not {TLS_SECRET_TYPE!r}"
    values = secret.values()
    missing = [k for k in ("tls.crt", "tls.key") if not values.get(k)]
    if missing:
        return Reason.INVALID_CERTIFICATE_REF, f"{where} has no {' or '.join(missing)}"
    try:
        pair = parse_tls_secret(values["tls.crt"], values["tls.key"])
    except InvalidCertificate as error:
        return Reason.INVALID_CERTIFICATE_REF, f"{where}: {error}"
    return Certificate(
        digest=pair.digest,
        source=f"secret/{ns}/{name}",
        dns_names=pair.dns_names,
        not_after=pair.leaf.not_after.isoformat().replace("+00:00", "Z"),
        chain_pem=pair.chain_pem.decode(),
        key_pem=pair.key.reveal().decode(),
    )


def unique(certificates: list[Certificate]) -> tuple[Certificate, ...]:
    """One certificate per digest, the first kept, sorted by digest (rule 3)."""
    by_digest: dict[str, Certificate] = {}
    for cert in certificates:
        by_digest.setdefault(cert.digest, cert)
    return tuple(by_digest[d] for d in sorted(by_digest))
