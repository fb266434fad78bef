"""The access log's writer: lines buffered on the loop, written in blocks by one thread.

Rules (NGINX's ``access_log ... buffer= flush=``):
1. ``write`` only appends a line to a list; it never makes a system call. The list is handed to
   the writer thread when it holds ``BLOCK`` bytes, or ``FLUSH_EVERY`` seconds after its first line
   (a timer on the running loop), or on ``flush``; so a busy process makes one write per block.
2. The loop never waits for the sink. The thread does the blocking writes: a pipe nobody reads,
   a slow terminal or a slow disk (a regular file's write can sleep in the kernel's dirty-page
   throttling, which ``O_NONBLOCK`` does not prevent) stalls only the thread. While the thread
   is busy, lines accumulate up to ``LIMIT`` bytes; past that each line is dropped and counted in
   ``dropped`` (``mirrorgate_access_log_dropped_total``).
3. Lines stay whole when several processes share one sink: a pipe, a terminal or a socket is
   written in pieces of at most ``PIPE_BUF`` bytes cut at line ends (writes that small are atomic
   on a pipe); a regular file is opened with ``O_APPEND`` (a write lands whole at the end).
   The sink's file flags are never changed, so a terminal or pipe shared with other processes
   keeps behaving as they expect.
4. ``drain`` (shutdown) hands over what is buffered and waits, up to a timeout, for the thread to
   write it; a sink that does not take it within the timeout does not hold the exit up.
"""

import asyncio
import atexit
import os
import stat
import threading

LIMIT = 1 << 20  # bytes buffered on the loop before lines are dropped
BLOCK = 64 << 10  # bytes that trigger a hand-over at once
FLUSH_EVERY = 0.1  # seconds a line may wait before it is handed over
PIPE_BUF = 4096  # POSIX: a write of at most this many bytes to a pipe is atomic


class AccessWriter:
    """Buffers lines (``write``, on the loop) and writes them to ``fd`` from its own thread."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.piecewise = not stat.S_ISREG(os.fstat(fd).st_mode)  # rule 3
        self.lines: list[str] = []
        self.size = 0  # characters in ``lines`` (bytes, but for non-ASCII characters)
        self.dropped_here = 0  # lines dropped on the loop (buffer full)
        self.lost = 0  # lines the thread could not write (the sink failed); its own counter
        self.armed = False  # a flush timer is pending
        self.outbox: list[str] | None = None  # handed to the thread, not yet written
        self.wake = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._run, name="access-log", daemon=True)
        self.thread.start()
        atexit.register(self.close)  # an exit that skipped the data plane's shutdown

    @property
    def dropped(self) -> int:
        """Lines dropped: the buffer was full, or the sink failed."""
        return self.dropped_here + self.lost

    def write(self, line: str) -> None:
        """Append ``line`` (ending ``\\n``); never blocks (rule 1, 2)."""
        if self.size >= LIMIT:
            self.dropped_here += 1
            return
        self.lines.append(line)
        self.size += len(line)
        if self.size >= BLOCK:
            self.flush()
        elif not self.armed:
            self._arm()

    def _arm(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a test, or the process is exiting): hand over now
            self.flush()
            return
        self.armed = True
        loop.call_later(FLUSH_EVERY, self._timer)

    def _timer(self) -> None:
        self.armed = False
        self.flush()
        if self.lines:  # the thread was busy: try again later
            self._arm()

    def flush(self) -> bool:
        """Hand the buffered lines to the thread unless it is still writing the previous ones;
        True when nothing is left buffered here."""
        if not self.lines:
            return True
        with self.wake:
            if self.outbox is not None:
                return False
            self.outbox, self.lines, self.size = self.lines, [], 0
            self.wake.notify()
        return True

    def drain(self, timeout: float) -> bool:
        """Hand over everything and wait up to ``timeout`` seconds until it is written (rule 4);
        True when it was."""
        with self.wake:
            if self.lines:
                if not self.wake.wait_for(lambda: self.outbox is None, timeout):
                    return False
                self.outbox, self.lines, self.size = self.lines, [], 0
                self.wake.notify_all()
            return self.wake.wait_for(lambda: self.outbox is None, timeout)

    def close(self, timeout: float = 1.0) -> None:
        """Drain, stop the thread and close ``fd``."""
        self.drain(timeout)
        with self.wake:
            self.closed = True
            self.wake.notify_all()
        self.thread.join(timeout)
        atexit.unregister(self.close)
        if not self.thread.is_alive() and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _run(self) -> None:
        while True:
            with self.wake:
                self.wake.wait_for(lambda: self.outbox is not None or self.closed)
                if self.outbox is None:
                    return
                lines = self.outbox
            self._write("".join(lines).encode("utf-8", "replace"))
            with self.wake:
                self.outbox = None
                self.wake.notify_all()

    def _write(self, data: bytes) -> None:
        at = 0
        try:
            while at < len(data):
                at += os.write(self.fd, data[at : self._piece_end(data, at)])
        except OSError:  # the sink is gone (EPIPE, a full disk): these lines are lost, count them
            self.lost += data.count(b"\n", at)

    def _piece_end(self, data: bytes, at: int) -> int:
        """Where the next write stops: the end, or the last line end within ``PIPE_BUF`` bytes
        (the end of the first line when it is longer) for a sink written piecewise (rule 3)."""
        if not self.piecewise or len(data) - at <= PIPE_BUF:
            return len(data)
        cut = data.rfind(b"\n", at, at + PIPE_BUF)
        if cut < 0:
            cut = data.find(b"\n", at)
        return len(data) if cut < 0 else cut + 1
