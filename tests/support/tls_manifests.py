"""YAML builders for TLS objects (Secrets, CA ConfigMaps, BackendTLSPolicies, ExternalName
Services), each returning documents that start with ``---`` like ``tests.support.manifests``.

PEM text goes into block scalars (``|``), so a certificate written by a test is loaded byte for
byte; ``data`` values are base64 as the apiserver stores them.
"""

import base64
import textwrap

from tests.support.certs import Leaf


def _block(pem: bytes | str, indent: int = 4) -> str:
    text = pem.decode() if isinstance(pem, bytes) else pem
    return "|\n" + textwrap.indent(text.rstrip("\n") + "\n", " " * indent)


def secret_doc(name: str, leaf: Leaf, namespace: str = "default", *, base64_data: bool = False) -> str:
    """A ``kubernetes.io/tls`` Secret holding ``leaf``, in ``stringData`` or in base64 ``data``."""
    if base64_data:
        body = (
            f"data:\n  tls.crt: {base64.b64encode(leaf.crt).decode()}\n  tls.key: {base64.b64encode(leaf.key).decode()}"
        )
    else:
        body = f"stringData:\n  tls.crt: {_block(leaf.crt)}  tls.key: {_block(leaf.key)}"
    return f"""---
apiVersion: v1
kind: Secret
metadata: {{name: {name}, namespace: {namespace}}}
type: kubernetes.io/tls
{body.rstrip()}
"""


def ca_configmap_doc(name: str, ca_pem: str, namespace: str = "default") -> str:
    """A ConfigMap whose ``ca.crt`` is ``ca_pem``."""
    return f"""---
apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}, namespace: {namespace}}}
data:
  ca.crt: {_block(ca_pem)}"""


def backend_tls_doc(name: str, service: str, ca_configmap: str, hostname: str, namespace: str = "default") -> str:
    """A BackendTLSPolicy on Service ``service``: CA from ``ca_configmap``, SNI and name ``hostname``."""
    return f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  targetRefs: [{{group: "", kind: Service, name: {service}}}]
  validation:
    caCertificateRefs: [{{group: "", kind: ConfigMap, name: {ca_configmap}}}]
    hostname: {hostname}
"""


def external_service_doc(name: str, external_name: str, namespace: str = "default") -> str:
    """An ExternalName Service (no ports: the route's backendRef port is used)."""
    return f"""---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {namespace}}}
spec: {{type: ExternalName, externalName: {external_name}}}
"""


def key_fragments(*leaves: Leaf) -> list[str]:
    """Pieces of each private key (PEM body lines and the base64 of the PEM) to look for in output."""
    out: list[str] = []
    for leaf in leaves:
        lines = [ln for ln in leaf.key.decode().splitlines() if ln and not ln.startswith("-----")]
        out += lines
        out.append(base64.b64encode(leaf.key).decode()[20:60])
    return out
