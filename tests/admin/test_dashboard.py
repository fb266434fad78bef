"""The admin dashboard: its files and headers over real sockets, then the page itself in headless
Chromium against a real gateway process (counters moving, drop reasons, the XSS probe rendered as
text) and against an admin server whose ``/mirrors`` holds a mismatch (the side-by-side diff).

Each browser test saves a screenshot under its tmp dir (and ``$MIRRORGATE_SCREENSHOT_DIR`` if
set) and prints the path. Waits poll the DOM with a deadline.
"""

import io
import json
import os
import re
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from random import Random
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from mirrorgate.admin.server import CONTENT_SECURITY_POLICY, STATIC, AdminApp, start_admin
from mirrorgate.echo import EchoConfig, start_echo
from mirrorgate.ir.table import MirrorCompare, RoutingTable
from mirrorgate.serve.admin import mirror_endpoints
from mirrorgate.serve.config import load_table
from mirrorgate.serve.plane import DataPlane
from tests.mirror.compare_support import Reply, scripted, with_compare
from tests.runtime.conftest import GatewayProcess
from tests.support.backends import Backend, free_port
from tests.support.browser import Browser, Page
from tests.support.client import Response, request
from tests.support.manifests import gateway_doc, route_doc, service_docs

ROOT = Path(__file__).resolve().parents[2]
# Rendered by the page wherever it shows a name, a header or a body: must stay text.
PROBE = "<img src=x onerror=window.pwned=1>"
MIRRORS_404 = re.compile(r"log \(network\): .*status of 404.*/mirrors$")


async def admin_get(port: int, path: str) -> Response:
    return await request(port, "GET", path, host="127.0.0.1")


async def test_dashboard_files_are_served_with_a_strict_policy() -> None:
    app = AdminApp(registry=CollectorRegistry(), table=RoutingTable, status=dict, ready=lambda: True)
    server = await start_admin(app, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        for path, ctype in (
            ("/", "text/html"),
            ("/dashboard", "text/html"),
            ("/dashboard-lib.js", "text/javascript"),
            ("/dashboard.js", "text/javascript"),
            ("/dashboard.css", "text/css"),
            ("/favicon.svg", "image/svg+xml"),
        ):
            r = await admin_get(port, path)
            assert r.status == 200, (path, r)
            assert (r.header("Content-Type") or "").startswith(ctype), (path, r.header("Content-Type"))
            assert r.header("Content-Security-Policy") == CONTENT_SECURITY_POLICY
            assert r.header("X-Content-Type-Options") == "nosniff"
            assert r.body
        page = (await admin_get(port, "/dashboard")).body.decode()
        script = (await admin_get(port, "/dashboard-lib.js")).body.decode()
        script += (await admin_get(port, "/dashboard.js")).body.decode()
        # JSON answers carry the same headers: a browser never sniffs them into a page.
        assert (await admin_get(port, "/status")).header("X-Content-Type-Options") == "nosniff"
    finally:
        server.close()
        await server.wait_closed()
    policy = dict(part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";"))
    assert policy["script-src"] == policy["style-src"] == policy["default-src"] == "'self'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY
    # Only this server's own files: nothing inline, no other origin.
    assert sorted(re.findall(r'(?:src|href)="([^"]*)"', page)) == [
        "/dashboard-lib.js",
        "/dashboard.css",
        "/dashboard.js",
        "/favicon.svg",
    ]
    assert not re.search(r"<script>|<style|\sstyle=|\son[a-z]+=", page)
    assert "://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "://" not in script.replace("http://www.w3.org/2000/svg", "")
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function", script)
    # Every file served is installed with the package.
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["mirrorgate"]
    assert {f"admin/{name}" for _, name in STATIC.values()} <= set(data)


def row(attr: str, name: str) -> str:
    """A JS expression: the table row whose ``attr`` is ``name``, or null."""
    return f"[...document.querySelectorAll('tr[{attr}]')].find(r => r.getAttribute('{attr}') === {json.dumps(name)})"


def field(attr: str, name: str, fieldname: str) -> str:
    """A JS expression: the text of ``[data-field=fieldname]`` in that row, or null."""
    cell = f"{row(attr, name)}?.querySelector('[data-field={fieldname}]')"
    return f"({cell}?.textContent ?? null)"


def peak(attr: str, name: str) -> str:
    """A JS expression: the highest rate of that row's sparkline (its ``data-peak``)."""
    return f"Number({row(attr, name)}?.querySelector('[data-peak]')?.dataset.peak)"


async def screenshot(page: Page, tmp_path: Path, name: str) -> None:
    paths = [tmp_path / name]
    if os.environ.get("MIRRORGATE_SCREENSHOT_DIR"):
        paths.append(Path(os.environ["MIRRORGATE_SCREENSHOT_DIR"]) / name)
    for path in paths:
        await page.screenshot(path)
        print(f"dashboard screenshot: {path}")


async def assert_readable(page: Page) -> None:
    """At 1280x800 nothing scrolls sideways; every chart and control has a name a screen reader reads."""
    assert await page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert (
        await page.evaluate("[...document.querySelectorAll('main svg')].filter(s => !s.getAttribute('aria-label'))")
        == []
    )
    assert await page.evaluate("[...document.querySelectorAll('select')].every(s => s.labels.length > 0)")
    assert await page.evaluate("[...document.querySelectorAll('th')].every(th => th.textContent.trim() !== '')")


async def assert_no_injection(page: Page) -> None:
    """The probe is on the page as text, and it made no element and ran nothing."""
    assert await page.evaluate(f"document.body.textContent.includes({json.dumps(PROBE)})")
    assert await page.evaluate("document.querySelectorAll('img').length") == 0
    assert await page.evaluate("window.pwned === undefined")


RULES = f"""  - matches: [{{path: {{type: PathPrefix, value: /shop}}}}]
    filters: [{{type: RequestMirror, requestMirror: {{backendRef: {{name: shadow, port: 8080}}}}}}]
    backendRefs: [{{name: primary, port: 8080}}]
  - matches: [{{path: {{type: PathPrefix, value: /gone}}}}]
    filters: [{{type: RequestMirror, requestMirror: {{backendRef: {{name: refused, port: 8080}}}}}}]
    backendRefs: [{{name: primary, port: 8080}}]
  - matches: [{{path: {{type: PathPrefix, value: /probe}}, headers: [{{name: x-probe, value: "{PROBE}"}}]}}]
    backendRefs: [{{name: primary, port: 8080}}]
"""
SHOP = "httproute/default/route/rule/0"
GONE = "httproute/default/route/rule/1"
PROBED = "httproute/default/route/rule/2"


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[int, int]]:
    """(gateway port, admin port) of a real ``mirrorgate run`` with two mirrored rules."""
    primary = await start_echo(EchoConfig(port=0, bind="127.0.0.1", name="primary-1-2"), log=io.StringIO())
    shadow = await start_echo(EchoConfig(port=0, bind="127.0.0.1", name="shadow-1-2"), log=io.StringIO())
    port = free_port()
    services = (
        service_docs("primary", primary.port, "default")
        + service_docs("shadow", shadow.port, "default")
        + service_docs("refused", free_port(), "default")
    )
    path = tmp_path / "gateway.yaml"
    listeners = f"{{name: http, port: {port}, protocol: HTTP}}"
    path.write_text(gateway_doc("default", listeners) + services + route_doc(RULES, namespace="default"))
    gw = await GatewayProcess.start(path)
    try:
        await gw.wait_line(r"serving 1 listener")
        yield port, await gw.admin_port()
    finally:
        await gw.kill()
        await primary.close()
        await shadow.close()


async def test_dashboard_shows_live_traffic_of_a_real_gateway(
    browser: Browser, gateway: tuple[int, int], tmp_path: Path
) -> None:
    port, admin = gateway
    page = await browser.open(f"http://127.0.0.1:{admin}/dashboard")
    await page.until(f"!!{row('data-rule', SHOP)}", "the mirrored rule's row")
    shop_mirror = f"{SHOP}/mirror/0"
    gone_mirror = f"{GONE}/mirror/0"
    assert await page.evaluate(row("data-mirror", shop_mirror) + " !== undefined")
    assert await page.evaluate(field("data-rule", PROBED, "rate")) == "not counted (no mirror)"
    polls = await page.evaluate("Number(document.body.dataset.polls)")

    for i in range(30):
        assert (await request(port, "GET", f"/shop/{i}")).status == 200
    for i in range(5):
        assert (await request(port, "GET", f"/gone/{i}")).status == 200

    # The counters reach the page, and the rates are derived from them (counter deltas).
    await page.until(f"{field('data-mirror', shop_mirror, 'sent')} === '30'", "30 mirror requests sent")
    await page.until(f"{peak('data-mirror', shop_mirror)} > 0", "a mirror send rate above 0 in the last 60 s")
    await page.until(f"{peak('data-rule', SHOP)} > 0", "a request rate above 0 in the last 60 s for the rule")
    assert await page.evaluate(f"{row('data-rule', SHOP)}.querySelector('svg rect') !== null")
    await page.until(
        f"{row('data-mirror', gone_mirror)}?.querySelector('[data-count=connect_error]')?.textContent === '5'",
        "5 mirror requests dropped for connect_error",
    )
    assert await page.evaluate(field("data-mirror", shop_mirror, "completed")) == "2xx 30"
    assert re.fullmatch(r"[\d.]+ / [\d.]+", await page.evaluate(field("data-mirror", shop_mirror, "mirror-latency")))
    assert await page.evaluate("Number(document.body.dataset.polls)") > polls
    # An untrusted value from the configuration (a header match) is text.
    assert PROBE in await page.evaluate(f"{row('data-rule', PROBED)}.textContent")
    await assert_no_injection(page)
    mirrors = await admin_get(admin, "/mirrors")
    if mirrors.status == 404:
        assert "no /mirrors" in await page.evaluate("document.querySelector('#mirrors-missing').textContent")
    await assert_readable(page)
    await screenshot(page, tmp_path, "dashboard-live.png")
    assert [e for e in page.errors if not (mirrors.status == 404 and MIRRORS_404.match(e))] == []


COMPARED = "httproute/infra/compared/rule/0/mirror/0"
COMPARED_RULES = """  - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: v2, port: 8080}}}]
    backendRefs: [{name: v1, port: 8080}]"""


def v1_reply(target: str) -> Reply:
    body = {"id": 7, "name": "cart", "note": PROBE, "total": 10}
    return (
        200,
        [("content-type", "application/json"), ("x-flavor", "plain"), ("x-probe", PROBE)],
        json.dumps(body).encode(),
    )


def v2_reply(target: str) -> Reply:
    """v1's answer with ``total`` and ``x-flavor`` changed, and 503 for ``/status``."""
    status, headers, body = v1_reply(target)
    doc = json.loads(body)
    doc["total"] = 11
    headers = [(n, "spicy" if n == "x-flavor" else v) for n, v in headers]
    return (503 if target.startswith("/status") else status), headers, json.dumps(doc).encode()


@pytest.fixture
async def compared(tmp_path: Path) -> AsyncIterator[tuple[DataPlane, int, int]]:
    """A gateway whose one mirror compares its responses: (plane, admin port, admin port without /mirrors)."""
    v1 = await Backend.scripted(scripted(v1_reply)).start()
    v2 = await Backend.scripted(scripted(v2_reply)).start()
    path = tmp_path / "gateway.yaml"
    path.write_text(
        gateway_doc()
        + service_docs("v1", v1.port)
        + service_docs("v2", v2.port)
        + route_doc(COMPARED_RULES, name="compared")
    )
    table = with_compare(load_table([str(path)], "127.0.0.1"), MirrorCompare())
    plane = DataPlane(table, port_overrides={80: 0}, rng=Random(1))
    await plane.start()
    common: dict[str, Any] = {
        "registry": plane.registry,
        "table": lambda: plane.table,
        "status": dict,
        "ready": lambda: True,
    }
    with_mirrors = await start_admin(
        AdminApp(**common, **mirror_endpoints(lambda: plane.table, plane.mirror.views())), "127.0.0.1", 0
    )
    without = await start_admin(AdminApp(**common), "127.0.0.1", 0)
    try:
        yield plane, with_mirrors.sockets[0].getsockname()[1], without.sockets[0].getsockname()[1]
    finally:
        for server in (with_mirrors, without):
            server.close()
            await server.wait_closed()
        await plane.shutdown(1.0)
        await v1.close()
        await v2.close()


def side(which: str, inner: str) -> str:
    """A JS expression: ``inner`` (a selector) inside the primary or mirror side of the diff shown."""
    return f"document.querySelector('#diff [data-side={which}] {inner}')"


async def test_dashboard_shows_a_mismatch_side_by_side(
    browser: Browser, compared: tuple[DataPlane, int, int], tmp_path: Path
) -> None:
    plane, admin, admin_without_mirrors = compared
    port = plane.port(80)
    headers = [("X-Request-Id", "rid-1"), ("X-Probe", PROBE)]
    assert (await request(port, "GET", "/cart", "shop.example", headers)).status == 200
    assert (await request(port, "GET", "/status", "shop.example", [("X-Request-Id", "rid-2")])).status == 200
    page = await browser.open(f"http://127.0.0.1:{admin}/dashboard")

    await page.until(f"{field('data-mirror', COMPARED, 'match-rate')} === '0%'", "a match rate of 0%")
    assert re.fullmatch(r"[\d.]+ / [\d.]+", await page.evaluate(field("data-mirror", COMPARED, "primary-latency")))
    await page.until("document.querySelectorAll('#diff-list button').length === 2", "two mismatches listed")
    # The newest is shown first: the status mismatch, primary on the left, mirror on the right.
    await page.until(f"{side('mirror', '[data-field=status]')}?.textContent === '503'", "the mirror's 503")
    assert await page.evaluate(f"{side('primary', '[data-field=status]')}.textContent") == "200"
    assert await page.evaluate(f"{side('mirror', '[data-field=status]')}.classList.contains('differs')")
    left, right = await page.evaluate(
        "[...document.querySelectorAll('#diff .side')].map(s => { const r = s.getBoundingClientRect();"
        " return {side: s.dataset.side, x: r.left, y: r.top, w: r.width}; })"
    )
    assert (left["side"], right["side"]) == ("primary", "mirror")
    assert left["x"] + left["w"] <= right["x"], (left, right)
    assert left["y"] == right["y"], (left, right)

    # The older one: a header and a JSON member differ, highlighted on both sides.
    await page.evaluate("document.querySelectorAll('#diff-list button')[1].click()")
    await page.until("document.querySelector('#diff [data-request-id]')?.dataset.requestId === 'rid-1'", "rid-1 shown")
    for which, flavor, total in (("primary", "plain", "10"), ("mirror", "spicy", "11")):
        assert await page.evaluate(f"{side(which, 'tr.differs[data-header=x-flavor] td')}?.textContent") == flavor
        assert await page.evaluate(f"""{side(which, 'mark.differs[data-path="$.total"]')}?.textContent""") == total
        assert await page.evaluate(f"{side(which, 'tr[data-header=x-probe]')}.className") == ""
        assert await page.evaluate(f"{side(which, 'tr[data-header=x-probe] td')}.textContent") == PROBE
    rows = "[...document.querySelectorAll('#diff .request-headers tr')]"
    request_headers = rows + ".map(tr => [...tr.children].map(c => c.textContent))"
    assert ["x-probe", PROBE] in await page.evaluate(request_headers)
    await assert_no_injection(page)
    await assert_readable(page)
    await screenshot(page, tmp_path, "dashboard-mismatch.png")
    await page.evaluate("document.querySelector('#h-diffs').scrollIntoView()")
    await screenshot(page, tmp_path, "dashboard-mismatch-diff.png")
    assert page.errors == []

    # An admin server without /mirrors: the page says so and still shows the counters.
    bare = await browser.open(f"http://127.0.0.1:{admin_without_mirrors}/dashboard")
    await bare.until("document.querySelector('#mirrors-missing')?.textContent.includes('no /mirrors')", "the notice")
    await bare.until(f"{field('data-mirror', COMPARED, 'sent')} === '2'", "the mirror's 2 requests")
    assert await bare.evaluate(field("data-mirror", COMPARED, "match")) == "not compared"
    assert [e for e in bare.errors if not MIRRORS_404.match(e)] == []


async def test_the_page_s_pure_parts(browser: Browser) -> None:
    """The Prometheus parser, counter rates, histogram quantiles and JSON paths, in the browser's own engine."""
    app = AdminApp(registry=CollectorRegistry(), table=RoutingTable, status=dict, ready=lambda: True)
    server = await start_admin(app, "127.0.0.1", 0)
    try:
        page = await browser.open(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/dashboard")
        lib = "globalThis.MirrorgateDashboard"
        text = (
            "# HELP x_total things\n# TYPE x_total counter\n"
            'x_total{a="q\\"uote",b="back\\\\slash",c="new\\nline"} 3.0 1700000000\n'
            "y 1e+3\nz +Inf\nw NaN\n"
        )
        samples = await page.evaluate(
            f"{lib}.parseProm({json.dumps(text)}).map(s => [s.name, s.labels, String(s.value)])"
        )
        assert samples == [
            ["x_total", {"a": 'q"uote', "b": "back\\slash", "c": "new\nline"}, "3"],
            ["y", {}, "1000"],
            ["z", {}, "Infinity"],
            ["w", {}, "NaN"],
        ]
        # A counter's rate per interval; a counter that went down restarted (its new value is the delta);
        # a key first seen after the first poll was 0 at the poll before.
        rates = await page.evaluate(
            f"(() => {{ const h = new {lib}.History(5); h.record('k', 0, 10); h.endPoll(0); h.record('k', 1, 30);"
            " h.endPoll(1); h.record('k', 3, 4); h.record('new', 3, 6); h.endPoll(3);"
            " return [h.rates('k'), h.rates('new'), h.rateNow('k')]; })()"
        )
        assert rates == [[20, 2], [3], 8]
        # histogram_quantile over cumulative buckets (le in seconds): linear inside a bucket.
        buckets = "[[0.001, 0], [0.01, 50], [0.1, 100], [Infinity, 100]]"
        quantiles = await page.evaluate(f"[0.5, 0.75, 0.99].map(q => {lib}.quantile(q, {buckets}))")
        assert quantiles == pytest.approx([0.01, 0.055, 0.0982])
        assert await page.evaluate(f"{lib}.quantile(0.5, [[0.1, 0], [Infinity, 4]])") == 0.1
        # Paths as the compare writes them: $.a, $.x-y, $[0], $['a b'], $['it\'s'].
        paths = await page.evaluate(
            f"[['$', 'a'], ['$', 'x-y'], ['$', 0], ['$', 'a b'], ['$', \"it's\"]]"
            f".map(([b, k]) => {lib}.childPath(b, k))"
        )
        assert paths == ["$.a", "$.x-y", "$[0]", "$['a b']", "$['it\\'s']"]
        assert [e for e in page.errors if not MIRRORS_404.match(e)] == []
    finally:
        server.close()
        await server.wait_closed()
