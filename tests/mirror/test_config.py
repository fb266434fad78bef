"""``MirrorConfig`` validation and ``run --mirror-limit NAME=VALUE`` parsing (the flag through a
real process: tests/runtime/test_flags.py)."""

from typing import Any

import msgspec
import pytest

from mirrorgate.mirror.config import FIELDS, MirrorConfig, parse_mirror_limit


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("max-concurrent-per-backend=64", "max_concurrent_per_backend", 64),
        ("max_queue_per_backend=0", "max_queue_per_backend", 0),
        ("timeout=2.5", "timeout", 2.5),
        ("breaker-failures=0", "breaker_failures", 0),
        ("body-lag-budget=4194304", "body_lag_budget", 4194304),
    ],
)
def test_parse_mirror_limit(text: str, key: str, value: float) -> None:
    into: dict[str, Any] = {}
    parse_mirror_limit(text, into)
    assert into == {key: value}
    assert getattr(MirrorConfig(**into), key) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("timeout", "expected NAME=VALUE with NAME one of max-concurrent-per-backend"),
        ("shadow-host-suffix=0", "expected NAME=VALUE"),  # its own flag: --no-shadow-host-suffix
        ("timeout=soon", "timeout: expected a number, got 'soon'"),
        ("max-concurrent-per-backend=1.5", "max-concurrent-per-backend: expected a whole number, got '1.5'"),
        ("max-concurrent-per-backend=0", "max-concurrent-per-backend: must be > 0, got '0'"),
        ("timeout=-1", "timeout: must be > 0, got '-1'"),
        ("timeout=inf", "timeout: expected a finite number, got 'inf'"),
        ("connect-timeout=nan", "connect-timeout: expected a finite number, got 'nan'"),
        ("max-queue-per-backend=-1", "max-queue-per-backend: must be >= 0 (0 = no queue), got '-1'"),
    ],
)
def test_parse_mirror_limit_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        parse_mirror_limit(text, {})


def test_every_setting_but_the_host_suffix_is_settable() -> None:
    assert set(FIELDS) == set(MirrorConfig.__struct_fields__) - {"shadow_host_suffix"}


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_config_rejects_what_the_parser_rejects(name: str) -> None:
    with pytest.raises(ValueError, match=f"MirrorConfig.{name} must"):
        msgspec.structs.replace(MirrorConfig(), **{name: -1})
