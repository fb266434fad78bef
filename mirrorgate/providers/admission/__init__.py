"""CRD-level admission: the checks a Kubernetes apiserver runs before it stores an object.

``admit(obj)`` returns every violation as a ``FieldError`` rendered the way the apiserver's
``field.Error`` prints after the path (``Invalid value: 101: spec...percent in body should be less
than or equal to 100``). An empty list means the apiserver would accept the object.

Gateway API kinds follow the **v1.6 standard-channel CRDs** (``config/crd/standard``); core kinds
follow ``k8s.io/kubernetes/pkg/apis/{core,discovery}/validation``. Rule families and their modules:

1. Metadata (every kind; ``meta``): name is a DNS-1123 subdomain (Service: DNS-1035 label,
   Namespace: DNS-1123 label), namespace is a DNS-1123 label, label keys/values and annotation keys.
2. OpenAPI schema limits (``schema``): minItems/maxItems, minLength/maxLength, pattern (Go RE2
   *search* semantics), minimum/maximum, enum, maxProperties, the IP ``oneOf`` on Gateway addresses.
3. List types (``schema``): ``listType=map`` (``Duplicate value: {"name":"x"}``) and ``listType=set``.
4. CEL rules (``x-kubernetes-validations``), messages byte-exact: HTTPRoute parentRefs
   distinctness, total matches, path values, timeouts (``httproute``); filter type guards, filter
   repetition, redirect/rewrite exclusivity, path modifiers, mirror percent/fraction, backend
   port, CORS wildcards (``filters``); Gateway listeners, TLS, addresses, infrastructure
   labels/annotations (``gateway``).
5. The apiserver's CEL gate (``schema.Errors``): when a schema error of type Unsupported/Required/
   Too long/Too many/type-invalid exists, CEL rules are not evaluated and one ``<nil>: Invalid
   value: null: some validation rules were not checked ...`` error is added instead (only for CRDs
   that have rules).
6. Core kinds (``core``): Service, EndpointSlice, Endpoints, Namespace.
7. TLS kinds (``tls``): Secret and ConfigMap (keys, base64, the ``kubernetes.io/tls`` keys) and
   BackendTLSPolicy (schema and its CEL rules).
8. MirrorPolicy (``mirrorpolicy``, ``mirrorgate.dev/v1alpha1``): the schema and CEL rules of
   mirrorgate's own CRD (``deploy/kubernetes/crds``).
9. GatewayConfig (``gwconfig``, ``mirrorgate.dev/v1alpha1``): the schema and CEL rules of its CRD
   (``deploy/kubernetes/crds``).

Go library behaviour the messages depend on (``%q`` quoting, ``json.Marshal``, RE2 ``$``,
``time.ParseDuration``, ``net.ParseIP``) comes from ``mirrorgate.gocompat``.
"""

from mirrorgate.errors import FieldError
from mirrorgate.model.core import Endpoints, EndpointSlice, Namespace, ReferenceGrant, Service
from mirrorgate.model.gateway import Gateway, GatewayClass
from mirrorgate.model.gwconfig import GatewayConfig
from mirrorgate.model.httproute import HTTPRoute
from mirrorgate.model.meta import Resource
from mirrorgate.model.mirrorpolicy import MirrorPolicy
from mirrorgate.model.tls import BackendTLSPolicy, ConfigMap, Secret
from mirrorgate.providers.admission.core import admit_endpoint_slice, admit_endpoints, admit_namespace, admit_service
from mirrorgate.providers.admission.gateway import admit_gateway, admit_gateway_class, admit_reference_grant
from mirrorgate.providers.admission.gwconfig import admit_gateway_config
from mirrorgate.providers.admission.httproute import admit_httproute
from mirrorgate.providers.admission.mirrorpolicy import admit_mirror_policy
from mirrorgate.providers.admission.tls import admit_backend_tls_policy, admit_config_map, admit_secret

__all__ = ["admit"]


def admit(obj: Resource) -> list[FieldError]:
    """Return every admission violation of ``obj`` (empty when the apiserver would accept it)."""
    match obj:
        case HTTPRoute():
            return admit_httproute(obj)
        case Gateway():
            return admit_gateway(obj)
        case GatewayClass():
            return admit_gateway_class(obj)
        case ReferenceGrant():
            return admit_reference_grant(obj)
        case Service():
            return admit_service(obj)
        case EndpointSlice():
            return admit_endpoint_slice(obj)
        case Endpoints():
            return admit_endpoints(obj)
        case Namespace():
            return admit_namespace(obj)
        case Secret():
            return admit_secret(obj)
        case ConfigMap():
            return admit_config_map(obj)
        case BackendTLSPolicy():
            return admit_backend_tls_policy(obj)
        case MirrorPolicy():
            return admit_mirror_policy(obj)
        case GatewayConfig():
            return admit_gateway_config(obj)
    return []
