"""The browser for the dashboard tests: Debian's ``chromium`` driven over CDP (``tests/support/browser.py``).

Without chromium the browser tests are skipped, except in CI (``CI=true``), where ``.ci/run``
installs it: there a missing browser fails them.
"""

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.browser import Browser, chromium_path


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    executable = chromium_path()
    if executable is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed: .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    started = await Browser.launch(tmp_path / "chromium-profile", executable)
    try:
        yield started
    finally:
        await started.close()
