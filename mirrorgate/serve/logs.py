"""Process logging: logs on stderr (text or JSON lines), access-log lines on their own handler.

Rules:
1. Process logs go to stderr; access-log lines (logger ``mirrorgate.access``) to stdout, a file,
   or nowhere, never mixed with the process logs.
2. In a worker process every line says which worker wrote it.
3. ``--log-level`` (debug, info or warning; default info) sets the level of the process logs in
   every process (the supervisor passes it to its workers in their ``RunConfig``); access-log
   lines are not process logs and keep their own level. Text lines at warning level and above
   start with ``warning:`` / ``error:``; JSON lines carry a ``level`` field.
4. Logger names: ``mirrorgate`` (process life: start, reload, stop), ``mirrorgate.admin``,
   ``mirrorgate.access`` (access-log lines), and ``mirrorgate.mirror`` for the mirror dispatcher
   (by convention: each dropped mirror copy at debug, a backend's breaker opening or closing at
   warning), so ``--log-level debug`` shows every drop and the default shows breaker changes only.
5. The mirror access log (``--mirror-access-log`` or a GatewayConfig's
   ``mirrorAccessLog.destination``, default off) is set up like the access log, with a writer of
   its own (``accesslog.install_mirror``): a sink of its own, never mixed with the process logs;
   it may be the access log's own file or stdout (each line is written whole).
6. Both files are opened (``open_files``) before either log is installed: a file that cannot be
   opened is a ``CannotOpen`` naming its setting, and then neither log changed.
"""

import io
import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from mirrorgate.dataplane import accesslog
from mirrorgate.dataplane.accesswriter import AccessWriter

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
ACCESS = "accessLog.destination"  # the settings' names (``model.gwconfig.Field.name``)
MIRROR = "mirrorAccessLog.destination"


class CannotOpen(Exception):
    """A log file that cannot be opened for appending (rule 6): ``line(source)`` says which setting."""

    def __init__(self, field: str, destination: str, why: str) -> None:
        super().__init__(f"{field}: cannot open {destination!r} for appending: {why}")
        self.field = field
        self.destination = destination
        self.why = why

    def line(self, source: str) -> str:
        """``GatewayConfig ns/cfg: mirrorAccessLog.destination: cannot open '/x' for appending: ...``."""
        return f"{source}: {self}" if source else str(self)


def open_files(destinations: Mapping[str, str]) -> dict[str, int]:
    """The file destinations among ``destinations`` (setting name -> ``-``, ``off`` or a path)
    opened for appending: setting name -> file descriptor. When one cannot be opened, those
    opened are closed and ``CannotOpen`` names it (rule 6)."""
    fds: dict[str, int] = {}
    for field, dest in destinations.items():
        if dest in ("-", "off"):
            continue
        try:
            fds[field] = _open_append(dest)
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
            for fd in fds.values():
                os.close(fd)
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise CannotOpen(field, dest, why) from exc
    return fds


def setup_logging(
    access_log: str,
    worker: int | None = None,
    log_format: str = "text",
    level: str = "info",
    mirror_access_log: str = "off",
) -> None:
    """Logs to stderr (text, or one JSON object per line with ``log_format="json"``); access-log
    lines to stdout, a file, or nowhere (``off``), mirror access-log lines likewise (rule 5). In a
    worker process every line says which worker wrote it (``[worker N]`` / a ``"worker"`` field;
    access lines end ``worker=N``, JSON ones get a ``"worker"`` field). Raises ``CannotOpen``
    once the process logs are set up, with neither access log installed (rule 6)."""
    tag = "" if worker is None else f"[worker {worker}] "
    handler_err = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler_err.setFormatter(JsonFormatter(worker))
    else:
        handler_err.setFormatter(TextFormatter(f"%(asctime)s %(levelprefix)s{tag}%(message)s"))
    logging.basicConfig(handlers=[handler_err])
    logging.getLogger().setLevel(LEVELS[level])
    switch_logs({ACCESS: access_log, MIRROR: mirror_access_log}, worker)


def switch_logs(destinations: Mapping[str, str], worker: int | None = None) -> None:
    """The access log and/or the mirror access log (``ACCESS``, ``MIRROR`` -> ``-``, ``off`` or a
    path) to their new destinations, both files opened first: raises ``CannotOpen`` with neither
    log changed (rule 6)."""
    fds = open_files(destinations)
    if MIRROR in destinations:
        setup_mirror_access_log(destinations[MIRROR], worker, fds.get(MIRROR))
    if ACCESS in destinations:
        setup_access_log(destinations[ACCESS], worker, fds.get(ACCESS))


def check_files(destinations: Mapping[str, str]) -> None:
    """Raises ``CannotOpen`` if a file of ``destinations`` cannot be opened for appending (it is
    created if missing, as a flag's is): for a process that names files others will write."""
    for fd in open_files(destinations).values():
        os.close(fd)


def setup_access_log(access_log: str, worker: int | None = None, fd: int | None = None) -> None:
    """Access-log lines to stdout (``-``), a file, or nowhere (``off``); replaces an earlier setup
    (a GatewayConfig's ``accessLog.destination`` read at start, ``serve/gwsettings.py``). ``fd``:
    the file, already opened (``open_files``)."""
    access = logging.getLogger("mirrorgate.access")
    access.propagate = False
    for old in list(access.handlers):
        access.removeHandler(old)
    accesslog.install(None)
    if access_log == "off":
        access.disabled = True
        return
    access.disabled = False
    access.setLevel(logging.INFO)  # the switch ``Exchange.finish`` reads
    try:
        if fd is None:
            fd = os.dup(sys.stdout.fileno()) if access_log == "-" else _open_append(access_log)
    except (AttributeError, io.UnsupportedOperation):  # stdout is no file (embedded): through logging
        accesslog.install(None)
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        if worker is not None:
            handler.addFilter(_WorkerTag(worker))
        access.addHandler(handler)
        return
    accesslog.install(AccessWriter(fd), worker)  # lines preformatted and buffered, no logging record


def setup_mirror_access_log(dest: str, worker: int | None = None, fd: int | None = None) -> None:
    """Mirror access-log lines to stdout (``-``), a file, or nowhere (``off``), rule 5; replaces an
    earlier setup. A ``DataPlane`` reads the sink when it is made (``DataPlane.reconfigure`` with
    ``fresh``: again). ``fd``: the file, already opened (``open_files``)."""
    fallback = logging.getLogger("mirrorgate.mirror_access")
    for old in list(fallback.handlers):
        fallback.removeHandler(old)
    if dest == "off":
        accesslog.install_mirror(None, on=False)
        return
    try:
        if fd is None:
            fd = os.dup(sys.stdout.fileno()) if dest == "-" else _open_append(dest)
    except (AttributeError, io.UnsupportedOperation):  # stdout is no file (embedded): through logging
        fallback.propagate = False
        fallback.setLevel(logging.INFO)
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))  # the line has its time and worker
        fallback.addHandler(handler)
        accesslog.install_mirror(None, worker)
        return
    accesslog.install_mirror(AccessWriter(fd), worker)


def _open_append(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)


class TextFormatter(logging.Formatter):
    """A text line; ``warning: `` / ``error: `` before the message at those levels (rule 3)."""

    def format(self, record: logging.LogRecord) -> str:
        level = record.levelno
        record.levelprefix = "" if level < logging.WARNING else f"{'warning' if level < logging.ERROR else 'error'}: "
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per log line: time (UTC, ISO 8601), level, logger, message (and worker)."""

    def __init__(self, worker: int | None = None) -> None:
        super().__init__()
        self.worker = worker

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.worker is not None:
            out["worker"] = self.worker
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out)


class _WorkerTag(logging.Filter):
    """Adds the worker number to each access-log line (text: `` worker=N``; JSON: a field)."""

    def __init__(self, worker: int) -> None:
        super().__init__()
        self.worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        line = record.getMessage()
        if line.startswith("{"):
            record.msg, record.args = '{"worker": %d, %s', (self.worker, line[1:])
        else:
            record.msg, record.args = "%s worker=%d", (line, self.worker)
        return True
