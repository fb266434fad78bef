"""The effective gateway-wide settings: command-line flags, the GatewayConfig in effect, defaults.

Owns: ``Settings`` (what a data plane applies), ``effective()`` (flags + GatewayConfig +
defaults, with where each value came from), ``SettingsState`` (what is served, what a reload
asked for, what waits for a restart) and the ``gatewayConfig`` section of ``/status`` and
``mirrorgate status``.

Rules:
1. For each field of ``model.gwconfig.FIELDS``: a flag given on the command line wins, then the
   GatewayConfig in effect (``translate/params.py`` picks it), then the built-in default. The
   source of each value is ``flag``, ``GatewayConfig NS/NAME`` or ``default``.
2. GatewayConfig values go through the flags' own parsers (``parse_mirror_limit``,
   ``parse_limit``, ``settings.parse_setting``), after durations become seconds and quantities
   bytes, so a value means the same and is checked the same way from YAML and from a flag; a
   value they refuse is a ``ConfigInvalid`` line naming the object, the field and the value.
3. Reload: every field applies at reload except those in ``RESTART`` (the access-log and mirror
   access-log files are opened once per process; connection pools and circuit breakers keep the settings they were
   made with; ``handshakeTimeout`` is fixed when a listening socket is made). A reload that
   changes one of those keeps the old value serving, logs a warning naming the field, the
   served and the wanted value, and lists it under ``pendingRestart`` until the values agree
   again: never silently ignored. Limits apply to connections accepted after the reload. Until
   the process first binds a listener (the Kubernetes source serves nothing before its first
   sync) nothing was made with the ``RESTART`` settings yet, so a reload applies them too.
4. Process-level settings have flags only: listen and admin addresses, ``-f`` paths, workers,
   the Kubernetes flags, and the process log format and level (set before any configuration is
   read, so that reading it can be logged).
5. The two log destinations are opened by the process that writes them (``serve/logs.py``
   rule 6): at start, a file that cannot be opened is a startup error naming the field and its
   source (``CannotOpen.line``); with ``--workers N`` each worker opens its own (the supervisor
   writes no access log), and the supervisor checks them before it starts any (``check_files``).
6. A GatewayClass whose ``parametersRef`` does not resolve (``InvalidParameters``) never takes
   its Gateways down (``translate/params.py`` rule 2): they are served with the last valid
   GatewayConfig the process loaded, each such value's source then ``GatewayConfig NS/NAME (last
   valid)``, else with the defaults (flags still win); ``fallback`` (and the ``gatewayConfig``
   section's ``fallback``) is the class's message: ``GatewayConfig ns/name not found; serving
   with the last valid settings (GatewayConfig ns/old)`` or ``...; serving with the defaults``.
"""

import logging
from typing import Any

import msgspec

from mirrorgate.dataplane.limits import Limits, parse_limit
from mirrorgate.gocompat import parse_duration_ns
from mirrorgate.mirror.config import MirrorConfig, parse_mirror_limit
from mirrorgate.model.gwconfig import FIELDS, Field, GatewayConfig, value_of
from mirrorgate.model.meta import quantity_bytes
from mirrorgate.serve.logs import ACCESS, MIRROR, CannotOpen

log = logging.getLogger("mirrorgate")

DEFAULT = "default"
FLAG = "flag"
LAST_VALID = "last valid"  # rule 6: the source of a value kept from the last valid GatewayConfig
RESTART = frozenset(
    {
        "accessLog.destination",
        "mirrorAccessLog.destination",
        "mirror.connectTimeout",
        "mirror.idleTimeout",
        "mirror.maxIdlePerEndpoint",
        "mirror.breakerFailures",
        "mirror.breakerOpenDuration",
        "limits.handshakeTimeout",
        "limits.maxResponseHeadBytes",
        "limits.maxResponseHeaders",
    }
)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """The gateway-wide settings a process serves with."""

    mirror: MirrorConfig = msgspec.field(default_factory=MirrorConfig)
    limits: Limits = msgspec.field(default_factory=Limits)
    access_log: str = "-"  # "-" stdout, "off" or a file path
    access_log_json: bool = False
    mirror_access_log: str = "off"  # "-" stdout, "off" or a file path
    grace: float = 10.0


class Effective(msgspec.Struct, frozen=True, kw_only=True):
    """``Settings`` with the source of each field (rule 1) and the GatewayConfig they came from."""

    settings: Settings
    sources: dict[str, str]  # Field.name -> "flag" | "GatewayConfig ns/name" | "default"
    config: str = ""  # "ns/name" of the GatewayConfig in effect, "" for none
    gateway_class: str = ""  # the GatewayClass whose parametersRef chose it
    fallback: str = ""  # rule 6: why these are the last valid settings or the defaults, "" otherwise


def current(settings: Settings, field: Field) -> object:
    """The value of ``field`` in ``settings`` (seconds for durations, bytes for sizes)."""
    if field.section == "mirror":
        return getattr(settings.mirror, field.attr)
    if field.section == "limits":
        return getattr(settings.limits, field.attr)
    if field.name == "accessLog.destination":
        return settings.access_log
    if field.name == "accessLog.format":
        return "json" if settings.access_log_json else "text"
    if field.name == "mirrorAccessLog.destination":
        return settings.mirror_access_log
    return settings.grace


def effective(
    base: Settings, flags: frozenset[str], config: GatewayConfig | None, chosen_by: str = "", *, fallback: str = ""
) -> Effective:
    """Rule 1: ``base`` holds the flag values (or the defaults), ``flags`` names the fields given
    on the command line (``Field.name``). Raises ``ValueError`` naming the field (rule 2).
    ``fallback`` (rule 6): ``config`` is the last valid GatewayConfig (None: the defaults) because
    the one the class names is not usable; the message says so."""
    if config is None:
        plain = {f.name: FLAG if f.name in flags else DEFAULT for f in FIELDS}
        return Effective(settings=base, sources=plain, gateway_class=chosen_by, fallback=fallback)
    ident = f"{config.metadata.namespace}/{config.metadata.name}"
    origin = f"GatewayConfig {ident}" + (f" ({LAST_VALID})" if fallback else "")
    mirror: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    other: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for field in FIELDS:
        value = value_of(config.spec, field)
        if field.name in flags:
            sources[field.name] = FLAG
        elif value is None:
            sources[field.name] = DEFAULT
        else:
            sources[field.name] = origin
            try:
                _take(field, value, mirror, limits, other)
            except ValueError as exc:
                raise ValueError(f"{origin}: {field.path}: {exc}") from None
    settings = Settings(
        mirror=msgspec.structs.replace(base.mirror, **mirror),
        limits=msgspec.structs.replace(base.limits, **limits),
        access_log=other.get("access_log", base.access_log),
        access_log_json=other.get("access_log_json", base.access_log_json),
        mirror_access_log=other.get("mirror_access_log", base.mirror_access_log),
        grace=other.get("grace", base.grace),
    )
    return Effective(settings=settings, sources=sources, config=ident, gateway_class=chosen_by, fallback=fallback)


def _take(field: Field, value: object, mirror: dict[str, Any], limits: dict[str, Any], other: dict[str, Any]) -> None:
    """One GatewayConfig value into the keyword arguments it sets, through the flag parsers (rule 2)."""
    if field.type == "bool":
        mirror[field.attr] = bool(value)
        return
    if field.type in ("string", "format"):
        assert isinstance(value, str)
        if field.name == "accessLog.destination":
            other["access_log"] = value
        elif field.name == "accessLog.format":
            other["access_log_json"] = value == "json"
        else:
            other["mirror_access_log"] = value
        return
    if field.type == "duration":
        assert isinstance(value, str)
        number: float = parse_duration_ns(value) / 1e9
    else:
        assert isinstance(value, int | str)
        number = quantity_bytes(value)
    if field.section == "shutdown":
        if number < 0:
            raise ValueError(f"must be >= 0, got {value!r}")
        other["grace"] = number
        return
    parse = parse_mirror_limit if field.section == "mirror" else parse_limit
    kind = type(getattr(MirrorConfig() if field.section == "mirror" else Limits(), field.attr))
    text = f"{field.attr}={int(number) if kind is int else number!r}"
    if kind is int and number != int(number):
        raise ValueError(f"expected a whole number, got {value!r}")
    parse(text, mirror if field.section == "mirror" else limits)


def log_destinations(settings: Settings, than: Settings | None = None) -> dict[str, str]:
    """The access log's and the mirror access log's destinations (``serve/logs.py``'s ``switch_logs``
    takes them): only those that differ from ``than``'s when given."""
    out = {ACCESS: settings.access_log, MIRROR: settings.mirror_access_log}
    if than is not None:
        old = log_destinations(than)
        out = {name: dest for name, dest in out.items() if dest != old[name]}
    return out


def cannot_open(wanted: Effective, exc: CannotOpen) -> str:
    """Rule 5: the error line of a log file that cannot be opened, naming where its value came
    from: ``GatewayConfig ns/cfg: mirrorAccessLog.destination: cannot open '/x' for appending: ...``."""
    source = wanted.sources.get(exc.field, DEFAULT)
    if source == FLAG:
        source = next(f.flag for f in FIELDS if f.name == exc.field)
    return exc.line("" if source == DEFAULT else source)


def changed(old: Settings, new: Settings) -> list[str]:
    """The fields whose value differs (``Field.name``), for the log line of a reload."""
    return [f.name for f in FIELDS if current(old, f) != current(new, f)]


def log_applied(old: Settings, new: Settings) -> None:
    """One line when a reload changed what is served: ``settings applied: mirror.timeout, ...``."""
    names = changed(old, new)
    if names:
        log.info("settings applied: %s", ", ".join(names))


class SettingsState:
    """What a process serves (``served``) and what the last load asked for (``wanted``), rule 3."""

    def __init__(self, start: Effective) -> None:
        self.wanted = start
        self.served = start.settings
        self._warned: dict[str, object] = {}

    def update(self, wanted: Effective, *, fresh: bool = False) -> Settings:
        """Record ``wanted``; returns the settings to serve now: ``wanted`` except the ``RESTART``
        fields, which keep their served value (logged, and listed by ``pending``); all of
        ``wanted`` when ``fresh`` (nothing was served yet, rule 3)."""
        self.wanted = wanted
        if fresh:
            self.served = wanted.settings
            self._warned = {}
            return self.served
        served = self.served
        mirror: dict[str, Any] = {}
        limits: dict[str, Any] = {}
        for field in FIELDS:
            if field.name in RESTART or field.section not in ("mirror", "limits"):
                continue
            target = mirror if field.section == "mirror" else limits
            target[field.attr] = current(wanted.settings, field)
        self.served = Settings(
            mirror=msgspec.structs.replace(served.mirror, **mirror),
            limits=msgspec.structs.replace(served.limits, **limits),
            access_log=served.access_log,
            access_log_json=wanted.settings.access_log_json,
            mirror_access_log=served.mirror_access_log,
            grace=wanted.settings.grace,
        )
        for item in self.pending():
            if self._warned.get(item["field"]) != item["wanted"]:
                log.warning(
                    "%s: %s changed to %r (%s); it needs a restart: still serving %r",
                    "configuration",
                    item["field"],
                    item["wanted"],
                    item["source"],
                    item["served"],
                )
        self._warned = {item["field"]: item["wanted"] for item in self.pending()}
        return self.served

    def pending(self) -> list[dict[str, Any]]:
        """The ``RESTART`` fields whose wanted value is not the one served."""
        out = []
        for field in FIELDS:
            if field.name not in RESTART:
                continue
            served, wanted = current(self.served, field), current(self.wanted.settings, field)
            if served != wanted:
                source = self.wanted.sources.get(field.name, DEFAULT)
                out.append({"field": field.name, "served": served, "wanted": wanted, "source": source})
        return out

    def view(self) -> dict[str, Any]:
        """The ``gatewayConfig`` section of ``/status``."""
        return view(self.wanted, self.served, self.pending())


def view(
    wanted: Effective, served: Settings | None = None, pending: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Every field with its value (the one served), its source, its flag and whether a reload
    applies it (``applies`` or ``restart``); ``pendingRestart`` lists the changes that wait for a
    restart; ``fallback`` why the GatewayClass's own GatewayConfig is not the one served (rule 6)."""
    served = served if served is not None else wanted.settings
    fields = {
        f.name: {
            "value": current(served, f),
            "source": wanted.sources.get(f.name, DEFAULT),
            "flag": f.flag or None,
            "reload": "restart" if f.name in RESTART else "applies",
        }
        for f in FIELDS
    }
    return {
        "ref": wanted.config or None,
        "gatewayClass": wanted.gateway_class or None,
        "fallback": wanted.fallback or None,
        "settings": fields,
        "pendingRestart": pending or [],
    }
