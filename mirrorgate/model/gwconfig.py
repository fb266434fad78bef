"""GatewayConfig (``mirrorgate.dev/v1alpha1``): gateway-wide settings named by a GatewayClass's
``spec.parametersRef`` (``{group: mirrorgate.dev, kind: GatewayConfig, name, namespace}``).

Every field is optional: an unset field takes the command-line flag's value when one was given,
else the built-in default (``docs/configuration.md``). ``FIELDS`` is the one table of every
settable field: its YAML path, its type, the least value it takes and the ``run`` flag that sets
it; admission, the CRD test, the merge with the flags and the docs test all read it.

Rules:
1. Durations are GEP-2257 strings (``2s``, ``500ms``, ``1h30m``); byte sizes are a whole number
   or a quantity string (``64Ki``, ``1Mi``, ``10M``), as Kubernetes resource quantities.
2. ``FIELDS`` minimums are the flag parsers' (``settings.parse_setting``): 1 for a field that must
   be positive, 0 where 0 means something (no queue, off); a test keeps the two in step.
"""

from typing import Literal

import msgspec

from mirrorgate.model.meta import Resource, Spec

GROUP = "mirrorgate.dev"
KIND = "GatewayConfig"
VERSION = "v1alpha1"

Bytes = int | str  # a whole number or a quantity string (rule 1)


class MirrorSettings(Spec, frozen=True, kw_only=True):
    shadow_host_suffix: bool | None = None
    max_concurrent_per_backend: int | None = None
    max_queue_per_backend: int | None = None
    timeout: str | None = None
    connect_timeout: str | None = None
    body_lag_budget: Bytes | None = None
    max_buffered_bytes: Bytes | None = None
    breaker_failures: int | None = None
    breaker_open_duration: str | None = None
    max_idle_per_endpoint: int | None = None
    idle_timeout: str | None = None


class LimitSettings(Spec, frozen=True, kw_only=True):
    max_target_bytes: Bytes | None = None
    max_head_bytes: Bytes | None = None
    max_headers: int | None = None
    max_body_bytes: Bytes | None = None
    header_timeout: str | None = None
    body_timeout: str | None = None
    min_body_rate: Bytes | None = None
    handshake_timeout: str | None = None
    keepalive_timeout: str | None = None
    max_connections: int | None = None
    max_pipelined: int | None = None
    websocket_idle_timeout: str | None = None
    max_response_head_bytes: Bytes | None = None
    max_response_headers: int | None = None


class AccessLogSettings(Spec, frozen=True, kw_only=True):
    destination: str | None = None  # "-" (stdout), "off" or a file path
    format: str | None = None  # "text" or "json"


class MirrorAccessLogSettings(Spec, frozen=True, kw_only=True):
    destination: str | None = None  # "-" (stdout), "off" or a file path


class ShutdownSettings(Spec, frozen=True, kw_only=True):
    grace: str | None = None


class GatewayConfigSpec(Spec, frozen=True, kw_only=True):
    mirror: MirrorSettings = msgspec.field(default_factory=MirrorSettings)
    limits: LimitSettings = msgspec.field(default_factory=LimitSettings)
    access_log: AccessLogSettings = msgspec.field(default_factory=AccessLogSettings)
    mirror_access_log: MirrorAccessLogSettings = msgspec.field(default_factory=MirrorAccessLogSettings)
    shutdown: ShutdownSettings = msgspec.field(default_factory=ShutdownSettings)


class GatewayConfig(Resource, frozen=True, kw_only=True):
    spec: GatewayConfigSpec = msgspec.field(default_factory=GatewayConfigSpec)


Type = Literal["bool", "int", "bytes", "duration", "string", "format"]


class Field(msgspec.Struct, frozen=True, kw_only=True):
    """One settable field: ``section.attr`` of the spec (snake case), its YAML path, its type, its
    least value (numbers) and the ``run`` flag that sets it (``--mirror-limit timeout=...``)."""

    section: str  # "mirror", "limits", "access_log", "mirror_access_log", "shutdown"
    attr: str
    type: Type
    minimum: int = 0
    flag: str = ""

    @property
    def path(self) -> str:
        """``spec.mirror.maxConcurrentPerBackend``."""
        return f"spec.{_camel(self.section)}.{_camel(self.attr)}"

    @property
    def name(self) -> str:
        """``mirror.maxConcurrentPerBackend``: the path without ``spec.`` (status, docs)."""
        return self.path.removeprefix("spec.")


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(p.capitalize() for p in rest)


def _dash(snake: str) -> str:
    return snake.replace("_", "-")


def _mirror(attr: str, type_: Type, minimum: int) -> Field:
    return Field(section="mirror", attr=attr, type=type_, minimum=minimum, flag=f"--mirror-limit {_dash(attr)}=")


def _limit(attr: str, type_: Type, minimum: int) -> Field:
    return Field(section="limits", attr=attr, type=type_, minimum=minimum, flag=f"--limit {_dash(attr)}=")


FIELDS: tuple[Field, ...] = (
    Field(section="mirror", attr="shadow_host_suffix", type="bool", flag="--no-shadow-host-suffix"),
    _mirror("max_concurrent_per_backend", "int", 1),
    _mirror("max_queue_per_backend", "int", 0),
    _mirror("timeout", "duration", 1),
    _mirror("connect_timeout", "duration", 1),
    _mirror("body_lag_budget", "bytes", 1),
    _mirror("max_buffered_bytes", "bytes", 1),
    _mirror("breaker_failures", "int", 0),
    _mirror("breaker_open_duration", "duration", 1),
    _mirror("max_idle_per_endpoint", "int", 0),
    _mirror("idle_timeout", "duration", 1),
    _limit("max_target_bytes", "bytes", 1),
    _limit("max_head_bytes", "bytes", 1),
    _limit("max_headers", "int", 1),
    _limit("max_body_bytes", "bytes", 0),
    _limit("header_timeout", "duration", 1),
    _limit("body_timeout", "duration", 1),
    _limit("min_body_rate", "bytes", 0),
    _limit("handshake_timeout", "duration", 1),
    _limit("keepalive_timeout", "duration", 1),
    _limit("max_connections", "int", 1),
    _limit("max_pipelined", "int", 1),
    _limit("websocket_idle_timeout", "duration", 1),
    _limit("max_response_head_bytes", "bytes", 1),
    _limit("max_response_headers", "int", 1),
    Field(section="access_log", attr="destination", type="string", flag="--access-log"),
    Field(section="access_log", attr="format", type="format", flag="--access-log-json"),
    Field(section="mirror_access_log", attr="destination", type="string", flag="--mirror-access-log"),
    Field(section="shutdown", attr="grace", type="duration", minimum=0, flag="--grace"),
)

ACCESS_LOG_FORMATS = ("text", "json")


def value_of(spec: GatewayConfigSpec, field: Field) -> object:
    """The field's value in ``spec`` (None: not set)."""
    return getattr(getattr(spec, field.section), field.attr)
