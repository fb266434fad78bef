"""`mirrorgate run | validate | status | echo | demo` — the only module that exits the process.

Each subcommand parses its options into one frozen struct and calls library code; exit codes:
0 success, 1 invalid configuration or a runtime failure (a port taken, interrupted before
serving), 2 usage error (argparse).

Rules:
1. Every flag value is checked when the arguments are parsed (``type=`` functions): ports are
   0..65535, addresses are IPv4/IPv6 literals, ``--grace`` is finite and >= 0, ``--access-log``
   and ``--mirror-access-log`` can be opened for appending. A bad value is one argparse line
   naming it, exit 2.
2. No traceback reaches the user: library failures are one line and exit 1; a SIGINT before the
   gateway handles signals is ``interrupted`` and exit 1.
3. ``validate`` prints errors on stdout (exit 1) and warnings on stderr (``warning: ...``, exit
   stays 0): every problem the statuses know about, and that nothing would be served when no
   listener is ours (``serve/report.py``).
4. A gateway-wide setting (``--grace``, ``--access-log``, ``--mirror-access-log``, ``--limit``,
   ...) given on the command line wins over the GatewayConfig's: its default is None ("not
   given"), and ``RunConfig.flags`` names the settings given (``serve/gwsettings.py``).
   ``status`` takes the same setting flags and shows the settings with the source of each.
"""

import argparse
import ipaddress
import math
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from mirrorgate import __version__
from mirrorgate.ir.dump import table_to_builtins, to_json, to_yaml
from mirrorgate.providers.files import LoadResult
from mirrorgate.status_view import list_view, utc_now
from mirrorgate.translate import TranslateOptions, translate

if TYPE_CHECKING:
    from mirrorgate.serve.config import KubeRun, RunConfig
    from mirrorgate.serve.gwsettings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        code: int = handler(args)
    except KeyboardInterrupt:  # SIGINT before the loop handles it (rule 2)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the exit
        print("mirrorgate: interrupted", file=sys.stderr)
        return 1
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mirrorgate", description="Gateway API HTTP gateway with request mirroring")
    parser.add_argument("--version", action="version", version=f"mirrorgate {__version__}")
    sub = parser.add_subparsers(metavar="COMMAND")

    run = sub.add_parser(
        "run", help="serve the Gateway API configuration in PATH (or the API server's) until SIGINT/SIGTERM"
    )
    _add_files(run, required=False)
    _add_kubernetes(run)
    _add_endpoints(run)
    run.add_argument(
        "--bind", type=ip_literal, default="0.0.0.0", help="address listeners bind when a Gateway has none"
    )
    _add_settings(run)
    run.add_argument(
        "--admin",
        type=admin_address,
        default="127.0.0.1:9901",
        metavar="HOST:PORT|off",
        help="admin server address (/healthz /readyz /metrics /config_dump /status); off disables it",
    )
    run.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="process logs on stderr as text or one JSON object per line",
    )
    run.add_argument(
        "--log-level",
        choices=("debug", "info", "warning"),
        default="info",
        help="the least important process log lines shown, in every worker (default info)",
    )
    run.add_argument(
        "--workers",
        type=_workers,
        default="auto",
        metavar="N|auto",
        help="worker processes sharing each listener (SO_REUSEPORT); auto = one per CPU (the default)",
    )
    run.add_argument("--no-watch", action="store_true", help="do not reload when a -f path changes (SIGHUP still does)")
    run.set_defaults(handler=_run)

    validate = sub.add_parser("validate", help="check Gateway API YAML as an apiserver would; exit 1 if invalid")
    _add_files(validate)
    _add_endpoints(validate)
    validate.set_defaults(handler=_validate)

    status = sub.add_parser("status", help="print every resource with its computed status")
    _add_files(status)
    _add_endpoints(status)
    status.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    status.add_argument(
        "--bind", type=ip_literal, default="0.0.0.0", help="address listeners bind when a Gateway has none"
    )
    status.add_argument("--routing-table", action="store_true", help="print the routing table (IR) instead")
    _add_settings(status, opens=False)
    status.set_defaults(handler=_status)

    demo = sub.add_parser("demo", help="the seed walkthroughs, locally: echo backends + gateway + traffic")
    demo.add_argument(
        "--port", type=port, default=None, help="gateway port (default 8080, or a free one, said, when 8080 is taken)"
    )
    demo.add_argument("--requests", type=count, default=200, help="requests sent to the percent-mirrored route (>= 0)")
    demo.add_argument("--no-serve", action="store_true", help="exit after the walkthrough instead of serving")
    demo.set_defaults(handler=_demo)

    echo = sub.add_parser("echo", help="run an echo-basic compatible test backend")
    echo.add_argument("--port", type=port, required=True)
    echo.add_argument("--bind", type=ip_literal, default="0.0.0.0")
    echo.add_argument("--name", default=None, help="pod name reported in responses (default: $POD_NAME)")
    echo.add_argument("--namespace", default=None, help="namespace reported in responses (default: $NAMESPACE)")
    echo.add_argument("--tls-cert", default="", metavar="PEM", help="serve HTTPS with this certificate chain file")
    echo.add_argument("--tls-key", default="", metavar="PEM", help="the private key file of --tls-cert")
    echo.set_defaults(handler=_echo)
    return parser


def _add_files(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    p.add_argument(
        "-f",
        "--filename",
        dest="paths",
        action="append",
        required=required,
        metavar="PATH",
        help="YAML file, directory of *.yaml/*.yml, or - for stdin (repeatable)",
    )


def _add_settings(p: argparse.ArgumentParser, *, opens: bool = True) -> None:
    """The gateway-wide settings a GatewayConfig can also set (``docs/configuration.md``); a flag
    given wins over the GatewayConfig, so each defaults to None, "not given" (rule 4)."""
    g = p.add_argument_group("gateway-wide settings (flags win over the GatewayClass's GatewayConfig)")
    g.add_argument("--grace", type=grace, default=None, help="seconds in-flight requests get on shutdown (>= 0; 10)")
    g.add_argument("--access-log-json", action="store_true", default=None, help="one JSON object per access-log line")
    g.add_argument(
        "--access-log",
        type=access_log if opens else access_log_name,
        default=None,
        metavar="PATH|-|off",
        help="where access-log lines go: - (stdout, the default), a file path, or off",
    )
    g.add_argument(
        "--mirror-access-log",
        type=access_log if opens else access_log_name,
        default=None,
        metavar="PATH|-|off",
        help="where mirror access-log lines go (one per sampled mirror, completed or dropped): "
        "- (stdout), a file path, or off (the default); --access-log-json applies to it too",
    )
    g.add_argument(
        "--no-shadow-host-suffix",
        action="store_true",
        default=None,
        help="send mirrored requests with the primary's Host, without the -shadow suffix",
    )
    g.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a per-worker limit, e.g. max-headers=200, body-timeout=10, keepalive-timeout=30, "
        "max-body-bytes=10485760 (repeatable; docs/behavior.md lists them and their defaults)",
    )
    g.add_argument(
        "--mirror-limit",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a mirror setting, e.g. max-concurrent-per-backend=64, max-queue-per-backend=0, "
        "timeout=2, breaker-failures=0 (repeatable; docs/mirroring.md lists them, their defaults and why)",
    )


def _settings_flags(args: argparse.Namespace) -> "tuple[Settings, frozenset[str]] | str":
    """The settings the flags give (defaults elsewhere) and which were given; or the error line."""
    from mirrorgate.dataplane.limits import Limits, parse_limit
    from mirrorgate.mirror.config import MirrorConfig, parse_mirror_limit
    from mirrorgate.model.gwconfig import FIELDS
    from mirrorgate.serve.gwsettings import Settings

    overrides: dict[str, Any] = {}
    mirror_overrides: dict[str, Any] = {}
    for flag, texts, parse, into in (
        ("--limit", args.limit, parse_limit, overrides),
        ("--mirror-limit", args.mirror_limit, parse_mirror_limit, mirror_overrides),
    ):
        try:
            for text in texts:
                parse(text, into)
        except ValueError as exc:
            return f"{flag}: {exc}"
    given = {f"limits.{k}" for k in overrides} | {f"mirror.{k}" for k in mirror_overrides}
    if args.no_shadow_host_suffix:
        given.add("mirror.shadow_host_suffix")
        mirror_overrides["shadow_host_suffix"] = False
    for name, value in (
        ("access_log.destination", args.access_log),
        ("access_log.format", args.access_log_json),
        ("mirror_access_log.destination", args.mirror_access_log),
    ):
        if value is not None:
            given.add(name)
    if args.grace is not None:
        given.add("shutdown.grace")
    names = frozenset(f.name for f in FIELDS if f"{f.section}.{f.attr}" in given)
    flagged = {"access_log": args.access_log, "mirror_access_log": args.mirror_access_log, "grace": args.grace}
    settings = Settings(  # what no flag gives is ``Settings``' default
        mirror=MirrorConfig(**mirror_overrides),
        limits=Limits(**overrides),
        access_log_json=bool(args.access_log_json),
        **{name: value for name, value in flagged.items() if value is not None},
    )
    return settings, names


def _add_kubernetes(p: argparse.ArgumentParser) -> None:
    k = p.add_argument_group("Kubernetes (--kubernetes instead of -f)")
    k.add_argument("--kubernetes", action="store_true", help="serve what the Kubernetes API server holds")
    k.add_argument(
        "--kubeconfig", metavar="PATH", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)"
    )
    k.add_argument("--context", metavar="NAME", help="kubeconfig context (default: its current-context)")
    k.add_argument(
        "--controller-name",
        default="mirrorgate.dev/gateway-controller",
        help="the GatewayClass controllerName served (default mirrorgate.dev/gateway-controller)",
    )
    k.add_argument(
        "--watch-namespace",
        dest="watch_namespaces",
        action="append",
        default=[],
        metavar="NS",
        help="watch namespaced kinds in NS only (repeatable; default: every namespace)",
    )
    k.add_argument("--lease-namespace", metavar="NS", help="namespace of the leader Lease (default: the pod's)")
    k.add_argument("--lease-name", default="mirrorgate-leader", help="name of the leader Lease")
    k.add_argument("--no-leader-elect", action="store_true", help="always write status (a single replica only)")
    k.add_argument(
        "--publish-service",
        type=namespaced_name,
        metavar="NS/NAME",
        help="the Service whose load-balancer ingress is every Gateway's status.addresses",
    )


def _add_endpoints(p: argparse.ArgumentParser) -> None:
    from mirrorgate.providers.endpoints import parse_endpoint

    p.add_argument(
        "--endpoints",
        type=parse_endpoint,
        action="append",
        default=[],
        metavar="SERVICE[.NS][:PORT]=ADDR:PORT",
        help="where a Service's backends listen when the files carry no EndpointSlice (repeatable; "
        "NS defaults to default, PORT is the Service port's number or name, every port when omitted)",
    )


def _load(args: argparse.Namespace) -> LoadResult | None:
    """The loaded files (with ``--endpoints`` applied once they load), notes and warnings on
    stderr; ``None`` (the error line printed) when a path cannot be read or an ``--endpoints``
    value names a Service or port the files do not define."""
    from mirrorgate.serve.config import ConfigInvalid, apply_endpoints, read_paths

    try:
        result = read_paths(args.paths)
        for note in result.notes:
            print(note, file=sys.stderr)
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        if result.errors:
            return result
        return msgspec.structs.replace(result, snapshot=apply_endpoints(result.snapshot, args.endpoints))
    except ConfigInvalid as exc:
        print(exc, file=sys.stderr)
        return None


def _validate(args: argparse.Namespace) -> int:
    result = _load(args)
    if result is None:
        return 1
    for err in result.errors:
        print(err)
    if result.errors:
        return 1
    for line in _warnings(result):
        print(f"warning: {line}", file=sys.stderr)
    print(f"{len(result.snapshot.objects())} object(s) valid", file=sys.stderr)
    return 0


def _warnings(result: LoadResult) -> list[str]:
    """What ``run`` would log as problems for this configuration (rule 3)."""
    from mirrorgate.serve.report import report

    translated = translate(result.snapshot)
    _, warnings = report(list_view(result.snapshot, translated.statuses), translated.table)
    return warnings


def _status(args: argparse.Namespace) -> int:
    result = _load(args)
    if result is None:
        return 1
    for err in result.errors:
        print(err, file=sys.stderr)
    from mirrorgate.serve.config import refused_configs
    from mirrorgate.serve.gwsettings import effective, view

    flagged = _settings_flags(args)
    if isinstance(flagged, str):
        print(f"mirrorgate status: {flagged}", file=sys.stderr)
        return 2
    options = TranslateOptions(bind=args.bind, refused_configs=refused_configs(result.errors))
    translated = translate(result.snapshot, options)
    if args.routing_table:
        data = table_to_builtins(translated.table)
    else:
        data = list_view(result.snapshot, translated.statuses, now=utc_now())
        params = translated.parameters
        try:
            data["gatewayConfig"] = view(effective(*flagged, params.config, params.chosen_by, fallback=params.fallback))
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 1
    sys.stdout.write(to_json(data) if args.output == "json" else to_yaml(data))
    return 1 if result.errors else 0


def _echo(args: argparse.Namespace) -> int:
    from mirrorgate.echo import EchoConfig, run_echo

    overrides = {k: v for k, v in (("name", args.name), ("namespace", args.namespace)) if v is not None}
    try:
        run_echo(EchoConfig(port=args.port, bind=args.bind, tls_cert=args.tls_cert, tls_key=args.tls_key, **overrides))
    except ValueError as exc:
        print(f"mirrorgate echo: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"mirrorgate echo: cannot listen on {args.bind}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def _demo(args: argparse.Namespace) -> int:
    from mirrorgate.demo import DemoConfig, DemoError, main as demo_main

    port = 8080 if args.port is None else args.port
    config = DemoConfig(
        gateway_port=port, port_asked=args.port is not None, percent_requests=args.requests, serve=not args.no_serve
    )
    try:
        demo_main(config)
    except DemoError as exc:
        print(f"mirrorgate demo: {exc}", file=sys.stderr)
        return 1
    return 0


def _run(args: argparse.Namespace) -> int:
    from mirrorgate.serve.config import RunConfig, StartupError
    from mirrorgate.serve.logs import setup_logging

    kube, problem = _kube_run(args)
    if problem is not None:
        print(f"mirrorgate run: {problem}", file=sys.stderr)
        return 2 if kube is None else 1
    flagged = _settings_flags(args)
    if isinstance(flagged, str):
        print(f"mirrorgate run: {flagged}", file=sys.stderr)
        return 2
    settings, flags = flagged
    # with workers, each worker writes its own access logs; the supervisor serves no request
    access_log, mirror_log = (settings.access_log, settings.mirror_access_log) if args.workers == 1 else ("off", "off")
    setup_logging(access_log, log_format=args.log_format, level=args.log_level, mirror_access_log=mirror_log)
    admin = None if args.admin == "off" else parse_host_port(args.admin)
    config = RunConfig(
        paths=tuple(args.paths or ()),
        bind=args.bind,
        log_format=args.log_format,
        log_level=args.log_level,
        admin=admin,
        watch=not args.no_watch,
        workers=args.workers,
        endpoints=tuple(args.endpoints),
        kube=kube,
        settings=settings,
        flags=flags,
    )
    try:
        _serve(config)
    except StartupError as exc:
        print(exc, file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. the process cannot start its worker processes
        print(f"mirrorgate run: {exc}", file=sys.stderr)
        return 1
    return 0


def _kube_run(args: argparse.Namespace) -> "tuple[KubeRun | None, str | None]":
    """``--kubernetes`` settings (None for ``-f``) and a problem: a usage error (no settings, exit 2),
    or the Kubernetes client missing or a bad kubeconfig (settings, exit 1)."""
    from mirrorgate.serve.config import KubeRun

    if bool(args.paths) == args.kubernetes:
        return None, "give either -f PATH or --kubernetes (one of them, not both)"
    if not args.kubernetes:
        return None, None
    if args.endpoints:
        return None, "--endpoints is for -f: with --kubernetes the cluster's EndpointSlices are used"
    kube = KubeRun(
        kubeconfig=args.kubeconfig,
        context=args.context,
        controller_name=args.controller_name,
        watch_namespaces=tuple(dict.fromkeys(args.watch_namespaces)),
        leader_elect=not args.no_leader_elect,
        lease_name=args.lease_name,
        lease_namespace=args.lease_namespace or "default",
        publish_service=args.publish_service,
    )
    try:
        import kubernetes_asyncio  # noqa: F401
    except ImportError:
        return kube, "--kubernetes needs the Kubernetes client: pip install 'mirrorgate[kubernetes]'"
    from mirrorgate.kube.kubeconfig import KubeconfigError, pod_namespace, resolve

    if args.lease_namespace is None:
        kube = msgspec.structs.replace(kube, lease_namespace=pod_namespace())
    try:
        resolve(args.kubeconfig, args.context)
    except KubeconfigError as exc:
        return kube, str(exc)
    return kube, None


def _serve(config: "RunConfig") -> None:
    """One process, or a supervisor of ``config.workers`` worker processes; raises ``StartupError``."""
    if config.workers > 1:
        from mirrorgate.serve.supervisor import supervise

        supervise(config)
    else:
        from mirrorgate.serve.single import run

        run(config)


def _workers(text: str) -> int:
    """``--workers``: a positive number or ``auto`` (one per CPU)."""
    if text == "auto":
        return os.cpu_count() or 1
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number or auto, got {text!r}")
    return int(text)


def port(text: str) -> int:
    """A TCP port number, 0..65535 (0: any free port)."""
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535, got {text!r}")
    return int(text)


def count(text: str) -> int:
    """A whole number >= 0."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def grace(text: str) -> float:
    """Seconds: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def ip_literal(text: str) -> str:
    """An IPv4 or IPv6 address literal (no host names)."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an IPv4 or IPv6 address, got {text!r}") from None


def admin_address(text: str) -> str:
    """``off`` or ``HOST:PORT`` with HOST an IP literal (``[V6]`` allowed) or ``localhost``;
    returned as given (``_run`` splits it)."""
    if text == "off":
        return text
    try:
        host, _ = parse_host_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected HOST:PORT with HOST an IP address, got {text!r}") from None
    return text


def access_log_name(text: str) -> str:
    """``-``, ``off`` or a file path (``status``: named, not opened)."""
    if not text:
        raise argparse.ArgumentTypeError("expected -, off or a file path, got ''")
    return text


def access_log(text: str) -> str:
    """``-``, ``off`` or a file that can be opened for appending (it is created if missing)."""
    if text in ("-", "off"):
        return text
    try:
        with open(text, "a", encoding="utf-8"):
            pass
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise argparse.ArgumentTypeError(f"cannot open {text!r} for appending: {why}") from None
    return text


def namespaced_name(text: str) -> tuple[str, str]:
    """``NAMESPACE/NAME``, both non-empty."""
    ns, sep, name = text.partition("/")
    if not sep or not ns or not name or "/" in name:
        raise argparse.ArgumentTypeError(f"expected NAMESPACE/NAME, got {text!r}")
    return ns, name


def parse_host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` -> (host, port); raises ValueError with the reason."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)
