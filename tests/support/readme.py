"""The shell blocks of a section of the README, for the tests that run its walkthroughs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_blocks(section: str) -> list[str]:
    """The bodies of the ```sh blocks under the heading ``section`` (up to the next ``## `` heading)."""
    text = README.read_text()
    part = text[text.index(section) :].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", part, re.S)
