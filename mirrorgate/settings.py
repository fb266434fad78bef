"""``NAME=VALUE`` command-line settings (``run --limit``, ``run --mirror-limit``).

Rules: a name is written with dashes or underscores; a value is a finite number of the field's
type; each error is one line naming the setting and what is wrong with it (the CLI prefixes the
flag), never a traceback.
"""

import math
from collections.abc import Mapping


def parse_setting(text: str, fields: Mapping[str, type], zero_means: Mapping[str, str]) -> tuple[str, float]:
    """``(field, number)`` of one ``NAME=VALUE``; ``fields`` maps each settable field to ``int``
    or ``float``. Every value must be > 0, but fields in ``zero_means`` also take 0 (what it
    means, for the message). Raises ValueError."""
    name, sep, value = text.partition("=")
    key = name.strip().replace("-", "_")
    if not sep or key not in fields:
        names = ", ".join(k.replace("_", "-") for k in fields)
        raise ValueError(f"expected NAME=VALUE with NAME one of {names}; got {text!r}")
    kind = fields[key]
    try:
        number = kind(value)
    except ValueError:
        raise ValueError(f"{name}: expected a {'whole ' if kind is int else ''}number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    if number < 0 or (number == 0 and key not in zero_means):
        allowed = f">= 0 (0 = {zero_means[key]})" if key in zero_means else "> 0"
        raise ValueError(f"{name}: must be {allowed}, got {value!r}")
    return key, number
