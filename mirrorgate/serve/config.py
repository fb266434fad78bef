"""Run settings, startup errors, and loading the ``-f`` paths into a configuration to serve.

Rules:
1. Library code raises (``StartupError``) and never exits; ``cli.py`` turns that into exit code 1.
2. A configuration with any load error is not served: ``ConfigInvalid`` lists every problem, one
   line each, as ``mirrorgate validate`` prints them.
3. ``port_overrides`` maps an IR server port to the port actually bound (``0`` = ephemeral); the
   matcher still sees the IR key, so routing is unchanged. Tests use it; so can users running as
   non-root on a laptop.
4. ``Loaded`` carries the GatewayConfig in effect (``translate/params.py``); ``Loaded.settings``
   merges it with the flags (``serve/gwsettings.py``), a refused value a ``ConfigInvalid``.
"""

import logging
import sys
from collections.abc import Sequence
from typing import Any

import msgspec

from mirrorgate.errors import ConfigError, MirrorgateError
from mirrorgate.ir.table import RoutingTable
from mirrorgate.model.gwconfig import GatewayConfig
from mirrorgate.model.snapshot import Snapshot
from mirrorgate.providers.endpoints import EndpointsError, EndpointSpec, with_endpoints
from mirrorgate.providers.files import LoadResult, load_paths
from mirrorgate.serve.gwsettings import Effective, Settings, effective
from mirrorgate.status_view import list_view
from mirrorgate.translate import TranslateOptions, translate

log = logging.getLogger("mirrorgate")


class StartupError(MirrorgateError):
    """The gateway cannot start: invalid configuration or a socket that cannot be bound."""

    @classmethod
    def of_lines(cls, lines: list[str]) -> "StartupError":
        """One error of several lines (each a problem, naming its file, object or field)."""
        return cls("\n".join(lines))


class ConfigInvalid(StartupError):
    """The configuration has errors; ``lines`` are ``mirrorgate validate``'s lines."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = list(lines)


class KubeRun(msgspec.Struct, frozen=True, kw_only=True):
    """``run --kubernetes``: where the API server is and what this replica does with it."""

    kubeconfig: str | None = None
    context: str | None = None
    controller_name: str = "mirrorgate.dev/gateway-controller"
    watch_namespaces: tuple[str, ...] = ()
    leader_elect: bool = True
    lease_name: str = "mirrorgate-leader"
    lease_namespace: str = "default"
    publish_service: tuple[str, str] | None = None  # (namespace, name)


class RunConfig(msgspec.Struct, frozen=True, kw_only=True):
    paths: tuple[str, ...]
    bind: str = "0.0.0.0"
    port_overrides: dict[int, int] = msgspec.field(default_factory=dict)
    log_format: str = "text"  # "text" or "json" (one object per line) for the process logs
    log_level: str = "info"  # "debug", "info" or "warning" for the process logs of every process
    admin: tuple[str, int] | None = ("127.0.0.1", 9901)  # None: no admin server
    watch: bool = True  # reload when a -f path changes on disk
    workers: int = 1  # > 1: a supervisor and that many worker processes (serve/supervisor.py)
    reuse_port: bool = False  # SO_REUSEPORT on listeners (set for workers)
    endpoints: tuple[EndpointSpec, ...] = ()  # ``--endpoints``: Service endpoints the files do not carry
    kube: KubeRun | None = None  # ``--kubernetes``: the API server is the source instead of ``paths``
    # The gateway-wide settings (mirror caps, limits per worker, access logs, shutdown grace): the
    # command line's, else the defaults; ``flags`` names those the command line gave
    # (``model.gwconfig.Field.name``): they win over the GatewayConfig's (``serve/gwsettings.py``).
    settings: Settings = msgspec.field(default_factory=Settings)
    flags: frozenset[str] = frozenset()


class Loaded(msgspec.Struct, frozen=True, kw_only=True):
    """A loaded and translated configuration: what is served and what ``/status`` shows."""

    table: RoutingTable
    status: dict[str, Any]  # the kubectl-shaped List of resources with their status
    gateway_config: GatewayConfig | None = None  # the one in effect (``translate/params.py``)
    gateway_config_class: str = ""  # the GatewayClass whose parametersRef names it
    # Why ``gateway_config`` is the last valid one (or None: the defaults) rather than the one a
    # rejected class names (``translate/params.py`` rule 2); "" when that one is in effect.
    gateway_config_fallback: str = ""

    @classmethod
    def of(cls, snapshot: Snapshot, options: TranslateOptions) -> "Loaded":
        """``snapshot`` translated: the one way every source (files, the Kubernetes API) builds one."""
        translated = translate(snapshot, options)
        params = translated.parameters
        return cls(
            table=translated.table,
            status=list_view(snapshot, translated.statuses),
            gateway_config=params.config,
            gateway_config_class=params.chosen_by,
            gateway_config_fallback=params.fallback,
        )

    def valid_config(self, last: GatewayConfig | None) -> GatewayConfig | None:
        """What a source remembers as the last valid GatewayConfig after loading this (given
        ``last`` before): the one in effect, unless it is itself the fallback or a value of it
        is one the flags' parsers refuse (then the reload fails: it is not valid)."""
        if self.gateway_config is None or self.gateway_config_fallback:
            return last
        try:
            effective(Settings(), frozenset(), self.gateway_config)
        except ValueError:
            return last
        return self.gateway_config

    def settings(self, config: RunConfig) -> Effective:
        """The gateway-wide settings of ``config``'s flags with this GatewayConfig (``serve/gwsettings.py``);
        raises ``ConfigInvalid`` naming the field when a value is refused."""
        try:
            return effective(
                config.settings,
                config.flags,
                self.gateway_config,
                self.gateway_config_class,
                fallback=self.gateway_config_fallback,
            )
        except ValueError as exc:
            raise ConfigInvalid([str(exc)]) from exc


def refused_configs(errors: Sequence[ConfigError]) -> dict[str, str]:
    """The GatewayConfigs among ``errors``' objects: ``"ns/name"`` -> their error lines, joined
    (``TranslateOptions.refused_configs``: a class naming one is rejected saying why)."""
    out: dict[str, list[str]] = {}
    for err in errors:
        kind, _, ident = err.obj.partition(" ")
        if kind == "GatewayConfig" and ident:
            out.setdefault(ident, []).append(str(err.error))
    return {k: "; ".join(v) for k, v in out.items()}


def read_paths(paths: Sequence[str], stdin_text: str | None = None) -> LoadResult:
    """``load_paths``, with a path that cannot be listed (a directory without permission) as a
    ``ConfigInvalid`` line naming it instead of an ``OSError``."""
    try:
        return load_paths(paths, stdin_text)
    except OSError as exc:
        name = exc.filename if exc.filename is not None else ", ".join(paths)
        raise ConfigInvalid([f"{name}: cannot read: {exc.strerror or exc}"]) from exc


def load_config(
    paths: Sequence[str],
    bind: str,
    stdin_text: str | None = None,
    *,
    notes: bool = True,
    endpoints: Sequence[EndpointSpec] = (),
    last: GatewayConfig | None = None,
) -> Loaded:
    """Load and translate; any load error is a ``ConfigInvalid`` listing every problem. The
    loader's notes are logged at INFO (``notes``; DEBUG otherwise), its warnings (documents skipped
    that were most likely meant for a gateway) at WARNING on every load; ``endpoints`` give
    Services the endpoints the files do not carry; ``last``: the last valid GatewayConfig the
    caller loaded, the settings a GatewayClass whose own does not resolve falls back to."""
    result = read_paths(paths, stdin_text)
    for note in result.notes:
        log.log(logging.INFO if notes else logging.DEBUG, "%s", note)
    for warning in result.warnings:
        log.warning("%s", warning)
    if result.errors:
        raise ConfigInvalid([str(e) for e in result.errors])
    snapshot = apply_endpoints(result.snapshot, endpoints)
    return Loaded.of(snapshot, TranslateOptions(bind=bind, last_config=last))


def apply_endpoints(snapshot: Snapshot, endpoints: Sequence[EndpointSpec]) -> Snapshot:
    """``snapshot`` with the ``--endpoints`` EndpointSlices added; a flag naming a Service or port
    the files do not define is a ``ConfigInvalid`` naming it."""
    if not endpoints:
        return snapshot
    try:
        return with_endpoints(snapshot, endpoints)
    except EndpointsError as exc:
        raise ConfigInvalid([f"--endpoints: {p}" for p in exc.problems]) from exc


def load_table(paths: Sequence[str], bind: str) -> RoutingTable:
    """The routing table of ``paths`` (see ``load_config``)."""
    return load_config(paths, bind).table


def read_stdin_once(paths: Sequence[str]) -> str | None:
    """Standard input is read once, at start, and reused by every reload."""
    return sys.stdin.read() if "-" in paths else None
