"""Status types and condition builders (Gateway API condition types and reasons).

Structs omit fields left at their default (``omit_defaults``), so a field the Gateway API schema
marks required must have no default here.
"""

from enum import StrEnum

import msgspec


class CondType(StrEnum):
    ACCEPTED = "Accepted"
    PROGRAMMED = "Programmed"
    RESOLVED_REFS = "ResolvedRefs"
    CONFLICTED = "Conflicted"
    PARTIALLY_INVALID = "PartiallyInvalid"


class Reason(StrEnum):
    ACCEPTED = "Accepted"
    PROGRAMMED = "Programmed"
    RESOLVED_REFS = "ResolvedRefs"
    NO_CONFLICTS = "NoConflicts"
    # GatewayClass
    UNSUPPORTED = "Unsupported"
    INVALID_PARAMETERS = "InvalidParameters"
    # Gateway
    INVALID = "Invalid"
    LISTENERS_NOT_VALID = "ListenersNotValid"
    UNSUPPORTED_ADDRESS = "UnsupportedAddress"
    ADDRESS_NOT_USABLE = "AddressNotUsable"
    # Listener
    PORT_UNAVAILABLE = "PortUnavailable"
    UNSUPPORTED_PROTOCOL = "UnsupportedProtocol"
    INVALID_ROUTE_KINDS = "InvalidRouteKinds"
    HOSTNAME_CONFLICT = "HostnameConflict"
    PROTOCOL_CONFLICT = "ProtocolConflict"
    INVALID_CERTIFICATE_REF = "InvalidCertificateRef"
    # Route
    NOT_ALLOWED_BY_LISTENERS = "NotAllowedByListeners"
    NO_MATCHING_LISTENER_HOSTNAME = "NoMatchingListenerHostname"
    NO_MATCHING_PARENT = "NoMatchingParent"
    UNSUPPORTED_VALUE = "UnsupportedValue"
    INCOMPATIBLE_FILTERS = "IncompatibleFilters"
    REF_NOT_PERMITTED = "RefNotPermitted"
    INVALID_KIND = "InvalidKind"
    BACKEND_NOT_FOUND = "BackendNotFound"
    # BackendTLSPolicy (PolicyAncestorStatus)
    CONFLICTED = "Conflicted"
    INVALID_CA_CERTIFICATE_REF = "InvalidCACertificateRef"
    NO_VALID_CA_CERTIFICATE = "NoValidCACertificate"


class _S(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True, gc=False):
    pass


class Condition(_S, frozen=True, kw_only=True):
    type: str
    status: str
    reason: str
    message: str
    observed_generation: int


class RouteGroupKind(_S, frozen=True, kw_only=True):
    group: str
    kind: str


class ListenerStatus(_S, frozen=True, kw_only=True):
    """Gateway API ``ListenerStatus``: all four fields are required by the schema, so none has a
    default and ``omit_defaults`` never drops them (``attachedRoutes: 0``, ``supportedKinds: []``)."""

    name: str
    supported_kinds: tuple[RouteGroupKind, ...] = msgspec.field(name="supportedKinds")
    attached_routes: int = msgspec.field(name="attachedRoutes")
    conditions: tuple[Condition, ...]


class GatewayStatusAddress(_S, frozen=True, kw_only=True):
    type: str
    value: str


class GatewayStatus(_S, frozen=True, kw_only=True):
    addresses: tuple[GatewayStatusAddress, ...] = ()
    conditions: tuple[Condition, ...] = ()
    listeners: tuple[ListenerStatus, ...] = ()


class GatewayClassStatus(_S, frozen=True, kw_only=True):
    conditions: tuple[Condition, ...] = ()
    supported_features: tuple[dict[str, str], ...] = ()


class ParentRef(_S, frozen=True, kw_only=True):
    group: str
    kind: str
    name: str
    namespace: str | None = None
    section_name: str | None = None
    port: int | None = None


class RouteParentStatus(_S, frozen=True, kw_only=True):
    parent_ref: ParentRef
    controller_name: str
    conditions: tuple[Condition, ...] = ()


class RouteStatus(_S, frozen=True, kw_only=True):
    parents: tuple[RouteParentStatus, ...] = ()


class PolicyAncestorStatus(_S, frozen=True, kw_only=True):
    """Gateway API ``PolicyAncestorStatus``: one ancestor (a Gateway whose routes use a targeted Service)."""

    ancestor_ref: ParentRef
    controller_name: str
    conditions: tuple[Condition, ...] = ()


class PolicyStatus(_S, frozen=True, kw_only=True):
    """Gateway API ``PolicyStatus`` (BackendTLSPolicy): ``ancestors`` is required by the schema."""

    ancestors: tuple[PolicyAncestorStatus, ...] = msgspec.field(name="ancestors")


class MirrorPolicyStatus(_S, frozen=True, kw_only=True):
    """A MirrorPolicy's ``status``: ``Accepted`` and ``ResolvedRefs`` conditions (mirrorgate's own
    kind, so the conditions are top-level rather than per ancestor)."""

    conditions: tuple[Condition, ...] = ()


AnyStatus = GatewayClassStatus | GatewayStatus | RouteStatus | PolicyStatus | MirrorPolicyStatus


def cond(kind: CondType, ok: bool, reason: Reason, message: str, generation: int) -> Condition:
    """A condition with a normalised message (capital first letter, final period, at most 32 KiB)."""
    return Condition(
        type=kind,
        status="True" if ok else "False",
        reason=reason,
        message=normalise(message),
        observed_generation=generation,
    )


def normalise(message: str) -> str:
    text = message.strip()
    if text and not text.endswith("."):
        text += "."
    text = text[:1].upper() + text[1:]
    return text[: 32 * 1024]
