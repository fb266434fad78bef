"""The README's "Verify a new version with shadow traffic", run as written: its commands are
checked against what this test runs (``examples/verify-checkout-v2.yaml`` copied and served with
the two ``--endpoints``, two ``mirrorgate echo`` processes named checkout-v1 and checkout-v2, 40
users' requests with ``x-user-id``), the ports moved to free ones; then ``/mirrors`` and
``/mirrors/<id>/diffs`` say what the README says, the README's ``sed`` is applied to the copy, and
after the reload the same 40 users are mirrored again (``sampleBy``: the same users) and match.
"""

import asyncio
from pathlib import Path

from tests.e2e.test_tls_walkthrough import EchoProcess, echoes
from tests.runtime.conftest import Starter, admin_json, gateways
from tests.support.backends import free_port
from tests.support.client import request
from tests.support.readme import readme_blocks
from tests.support.waiting import until_async

__all__ = ["echoes", "gateways"]  # the fixtures, imported to be used here

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "verify-checkout-v2.yaml"
SECTION = "## Verify a new version with shadow traffic"
USERS = 40


async def send_users(port: int) -> None:
    for u in range(1, USERS + 1):
        r = await request(port, host=f"127.0.0.1:{port}", headers=[("x-user-id", f"user-{u}")], path="/cart")
        assert r.status == 200, r
        assert r.json()["pod"] == "checkout-v1"  # the primary answers, always
        assert "X-Mirrored" not in r.json()["headers"]  # the mirror-only header never reaches it


async def the_mirror(admin: int, compared: int) -> dict[str, object]:
    """The one mirror of ``/mirrors`` once ``compared`` comparisons are done."""
    found: dict[str, object] = {}

    async def done() -> bool:
        mirrors = (await admin_json(admin, "/mirrors"))["mirrors"]
        assert isinstance(mirrors, list), mirrors
        assert len(mirrors) == 1, mirrors
        found.clear()
        found.update(mirrors[0])
        summary = found["compare"]
        assert isinstance(summary, dict), found
        return bool(summary["compared"] == compared)

    await until_async(done, f"{compared} comparisons in /mirrors")
    return found


async def test_readme_walkthrough_shows_the_pod_mismatch_then_matches(
    gateways: Starter, echoes: list[EchoProcess], tmp_path: Path
) -> None:
    run, ask, diffs, fix = readme_blocks(SECTION)
    assert "--name checkout-v1" in run
    assert "--name checkout-v2" in run
    assert "cp $E/verify-checkout-v2.yaml checkout.yaml" in run
    assert "--endpoints checkout=127.0.0.1:3000 --endpoints checkout-v2=127.0.0.1:3001" in run
    assert f"$(seq {USERS})" in run
    assert '-H "x-user-id: user-$u"' in run
    assert "/cart" in run
    assert "/mirrors" in ask
    assert "/mirrors/$ID/diffs" in diffs

    v1_port, v2_port, port = free_port(), free_port(), free_port()
    echoes.append(await EchoProcess.start("--port", str(v1_port), "--name", "checkout-v1"))
    echoes.append(await EchoProcess.start("--port", str(v2_port), "--name", "checkout-v2"))
    v1, v2 = echoes
    copy = tmp_path / "checkout.yaml"
    copy.write_text(EXAMPLE.read_text().replace("port: 8080", f"port: {port}"))
    gw = await gateways(
        copy, "--endpoints", f"checkout=127.0.0.1:{v1_port}", "--endpoints", f"checkout-v2=127.0.0.1:{v2_port}"
    )
    await gw.wait_line(r"serving \d+ listener")
    admin = await gw.admin_port()

    await send_users(port)
    await v2.drain()
    mirrored = len(v2.echoed())
    assert 5 <= mirrored <= 35, mirrored  # half of 40 users; outside this, about one run in a million
    mirror = await the_mirror(admin, mirrored)
    summary = mirror["compare"]
    assert isinstance(summary, dict)
    assert summary["matched"] == 0
    assert summary["matchRate"] == 0.0
    assert summary["mismatches"] == {"status": 0, "header": 0, "body": mirrored}
    assert all(line.rstrip().endswith(f"host=127.0.0.1:{port}") for line in v2.echoed())  # host: Original
    listing = await admin_json(admin, f"/mirrors/{mirror['id']}/diffs")
    kept = listing["diffs"]
    assert isinstance(kept, list)
    assert kept
    for diff in kept:
        found = [(d["kind"], d["path"], d["primary"], d["mirror"]) for d in diff["differences"]]
        ports = str(v1_port), str(v2_port)  # echo-basic reports the port it listens on
        assert found == [("body", "$.httpPort", *ports), ("body", "$.pod", "checkout-v1", "checkout-v2")], diff

    sed = next(line for line in fix.splitlines() if line.startswith("sed "))
    proc = await asyncio.create_subprocess_exec("bash", "-c", sed, cwd=tmp_path)
    assert await proc.wait() == 0
    assert "    - $.httpPort\n    - $.pod\n" in copy.read_text()
    await gw.wait_line(r"reloaded")
    await send_users(port)
    await v2.drain()
    assert len(v2.echoed()) == 2 * mirrored  # the same users, mirrored again
    mirror = await the_mirror(admin, 2 * mirrored)
    summary = mirror["compare"]
    assert isinstance(summary, dict)
    assert summary["matched"] == mirrored, summary
    await v1.drain()
    assert len(v1.echoed()) == 2 * USERS
