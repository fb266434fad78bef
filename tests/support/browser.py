"""A headless Chromium driven over the Chrome DevTools Protocol (CDP) with aiohttp's websocket client.

``Browser.launch(tmp)`` starts ``chromium --headless --remote-debugging-port=0`` with its profile in
``tmp`` and reads the port it chose from ``DevToolsActivePort``; ``open(url)`` makes a 1280x800
page and waits for its load event. A ``Page`` collects every script error (uncaught exceptions,
``console.error``, and the browser's own error log: failed loads, Content-Security-Policy
violations) in ``errors``, evaluates expressions (``evaluate``) and polls them with a deadline
(``until``), and saves screenshots. Every wait is bounded.

``chromium_path()`` is the browser to use, or None: ``$CHROMIUM`` if set, else ``chromium`` on
the PATH (Debian's package; ``.ci/run`` installs it in CI).
"""

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import aiohttp

WAIT = 20.0


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM") or shutil.which("chromium")


class CdpError(Exception):
    pass


class Connection:
    """One CDP websocket: commands by id, events to every listener."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.session = session
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if "id" in data:
                future = self.pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            else:
                for listener in list(self.listeners):
                    listener(data)
        for future in self.pending.values():
            if not future.done():
                future.set_exception(CdpError("the browser closed the DevTools connection"))

    async def send(self, method: str, session_id: str | None = None, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[ident] = future
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session_id is not None:
            message["sessionId"] = session_id
        await self.ws.send_str(json.dumps(message))
        async with asyncio.timeout(WAIT):
            reply = await future
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


class Page:
    """One tab, attached with its own CDP session."""

    def __init__(self, conn: Connection, session_id: str) -> None:
        self.conn = conn
        self.session_id = session_id
        self.errors: list[str] = []
        self.loaded = asyncio.Event()
        conn.listeners.append(self._on_event)

    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("sessionId") != self.session_id:
            return
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            described = details.get("exception", {}).get("description") or details.get("text")
            self.errors.append(f"exception: {described}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.errors.append(f"console.{params['type']}: {args}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".rstrip())
        elif method == "Page.loadEventFired":
            self.loaded.set()

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        return await self.conn.send(method, self.session_id, **params)

    async def navigate(self, url: str) -> None:
        self.loaded.clear()
        result = await self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise CdpError(f"cannot open {url}: {result['errorText']}")
        async with asyncio.timeout(WAIT):
            await self.loaded.wait()

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` (awaited if it is a promise); an exception fails."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise CdpError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    async def until(self, expression: str, what: str, within: float = WAIT) -> Any:
        """Poll ``expression`` until it is truthy and return it; fails naming ``what`` and the last value."""
        last: Any = None
        try:
            async with asyncio.timeout(within):
                while True:
                    last = await self.evaluate(expression)
                    if last:
                        return last
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise AssertionError(f"{what}: not seen within {within} s (last value {last!r})") from None

    async def screenshot(self, path: Path) -> Path:
        data = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=False)
        await asyncio.to_thread(_write, path, base64.b64decode(data["data"]))
        return path


class Browser:
    def __init__(self, proc: asyncio.subprocess.Process, conn: Connection) -> None:
        self.proc = proc
        self.conn = conn

    @classmethod
    async def launch(cls, profile: Path, executable: str) -> Self:
        await asyncio.to_thread(profile.mkdir, parents=True, exist_ok=True)
        proc = await asyncio.create_subprocess_exec(
            executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-extensions",
            "--no-first-run",
            "--no-default-browser-check",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            port, path = await _devtools_address(profile / "DevToolsActivePort", proc)
            session = aiohttp.ClientSession()
            ws = await session.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0)
        except BaseException:
            proc.kill()
            await proc.wait()
            raise
        return cls(proc, Connection(session, ws))

    async def open(self, url: str, width: int = 1280, height: int = 800) -> Page:
        target = await self.conn.send("Target.createTarget", url="about:blank")
        attached = await self.conn.send("Target.attachToTarget", targetId=target["targetId"], flatten=True)
        page = Page(self.conn, attached["sessionId"])
        for domain in ("Runtime", "Log", "Page"):
            await page.send(f"{domain}.enable")
        await page.send(
            "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False
        )
        await page.navigate(url)
        return page

    async def close(self) -> None:
        with contextlib.suppress(CdpError, ConnectionError, TimeoutError):
            await self.conn.send("Browser.close")
        await self.conn.close()
        try:
            async with asyncio.timeout(5):
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


async def _devtools_address(file: Path, proc: asyncio.subprocess.Process) -> tuple[int, str]:
    """(port, browser websocket path) from the profile's ``DevToolsActivePort``, once written."""
    async with asyncio.timeout(WAIT):
        while True:
            if proc.returncode is not None:
                raise CdpError(f"chromium exited with {proc.returncode} before listening for DevTools")
            with contextlib.suppress(FileNotFoundError):
                lines = (await asyncio.to_thread(file.read_text)).split()
                if len(lines) >= 2:  # else half written: read it again
                    return int(lines[0]), lines[1]
            await asyncio.sleep(0.05)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
