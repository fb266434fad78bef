"""Process logging: logs on stderr (text or JSON lines), access-log lines on their own handler.

Rules:
1. Process logs go to stderr; access-log lines (logger ``mirrorgate.access``) to stdout, a file,
   or nowhere, never mixed with the process logs.
2. In a worker process every line says which worker wrote it.
"""

import io
import json
import logging
import os
import sys
import time
from typing import Any

from mirrorgate.dataplane import accesslog
from mirrorgate.dataplane.accesswriter import AccessWriter


def setup_logging(access_log: str, worker: int | None = None, log_format: str = "text") -> None:
    """Logs to stderr (text, or one JSON object per line with ``log_format="json"``); access-log
    lines to stdout, a file, or nowhere (``off``). In a worker process every line says which worker
    wrote it (``[worker N]`` / a ``"worker"`` field; access lines end ``worker=N``, JSON ones get a
    ``"worker"`` field)."""
    tag = "" if worker is None else f"[worker {worker}] "
    handler_err = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler_err.setFormatter(JsonFormatter(worker))
    else:
        handler_err.setFormatter(logging.Formatter(f"%(asctime)s {tag}%(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler_err])
    access = logging.getLogger("mirrorgate.access")
    access.propagate = False
    if access_log == "off":
        access.disabled = True
        return
    access.setLevel(logging.INFO)  # the switch ``Exchange.finish`` reads
    try:
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


def _open_append(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)


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
