"""`mirrorgate demo` end to end, as a real process: mirroring visible in its output."""

import re
import subprocess
import sys


def test_demo_walkthrough_shows_mirroring() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mirrorgate", "demo", "--no-serve", "--port", "0", "--requests", "100"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Traceback" not in proc.stderr
    # the primary answered, the 100% mirror received every request, the responses of the mirror were dropped
    assert out.count("-> 200 from pod backend-5d9c7b6f4-x2k8q") == 3
    assert "backend answered 3, backend-2 received 3 mirrored copies" in out
    assert re.search(r"\[backend-2\] Echoing back request made to /get\?demo=2 to client", out)
    # the percent mirror: a binomial count for 100 draws at 42% (generous bound: 5 sigma)
    m = re.search(r"foo-v2 received (\d+) mirrored copies", out)
    assert m is not None
    assert 42 - 25 <= int(m.group(1)) <= 42 + 25
    assert "answered by: {'foo-v1-5d9c7b6f4-x2k8q': 100}" in out
    assert re.search(r"http-mirror/rule/0/mirror/0 -> service/default/backend-2:3000: sent 3, .*'2xx': 3", out)
