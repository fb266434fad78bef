"""The pure parts of GatewayConfig: the field table against the settings and the flag parsers,
quantities and durations, the merge (flag > GatewayConfig > default) and what a reload applies."""

import logging

import pytest

from mirrorgate.dataplane import limits as limits_module
from mirrorgate.dataplane.limits import Limits
from mirrorgate.mirror import config as mirror_module
from mirrorgate.mirror.config import MirrorConfig, parse_mirror_limit
from mirrorgate.model.gwconfig import FIELDS, GatewayConfig, GatewayConfigSpec, LimitSettings, MirrorSettings
from mirrorgate.model.meta import ObjectMeta, quantity_bytes
from mirrorgate.providers.admission import admit
from mirrorgate.serve.gwsettings import RESTART, Settings, SettingsState, effective, view

META = ObjectMeta(name="cfg", namespace="ns")


def gwconfig(mirror: MirrorSettings | None = None, limits: LimitSettings | None = None) -> GatewayConfig:
    spec = GatewayConfigSpec(mirror=mirror or MirrorSettings(), limits=limits or LimitSettings())
    return GatewayConfig(api_version="mirrorgate.dev/v1alpha1", kind="GatewayConfig", metadata=META, spec=spec)


def test_every_mirror_setting_and_limit_has_a_field_with_the_flag_parsers_minimum() -> None:
    for section, struct, module in (("mirror", MirrorConfig, mirror_module), ("limits", Limits, limits_module)):
        fields = {f.attr: f for f in FIELDS if f.section == section}
        assert set(fields) == set(struct.__struct_fields__), section
        for attr, f in fields.items():
            if f.type == "bool":
                continue
            assert f.minimum == (0 if attr in module._ZERO_MEANS else 1), f.name
            assert (module.FIELDS[attr] is float) == (f.type == "duration"), f.name
    assert {f.name for f in FIELDS} >= RESTART


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (5, 5),
        ("5", 5),
        ("64Ki", 65536),
        ("1Mi", 1 << 20),
        ("2Gi", 2 << 30),
        ("10k", 10_000),
        ("3M", 3 * 10**6),
        ("1G", 10**9),
    ],
)
def test_quantities(text: int | str, value: int) -> None:
    assert quantity_bytes(text) == value


def test_a_duration_means_what_the_flag_in_seconds_means() -> None:
    from_flag: dict[str, object] = {}
    parse_mirror_limit("timeout=1.5", from_flag)
    cfg = gwconfig(mirror=MirrorSettings(timeout="1s500ms"))
    assert effective(Settings(), frozenset(), cfg).settings.mirror == MirrorConfig(**from_flag)  # type: ignore[arg-type]


def test_a_value_the_flag_parser_refuses_names_the_object_the_field_and_the_value() -> None:
    cfg = gwconfig(limits=LimitSettings(max_connections=0))  # not admitted: the parsers check again
    with pytest.raises(ValueError, match="maxConnections") as info:
        effective(Settings(), frozenset(), cfg)
    assert str(info.value) == "GatewayConfig ns/cfg: spec.limits.maxConnections: max_connections: must be > 0, got '0'"
    assert [str(e) for e in admit(cfg)] == [
        "spec.limits.maxConnections: Invalid value: 0: spec.limits.maxConnections in body should be greater than "
        "or equal to 1"
    ]


def test_flags_win_then_the_gatewayconfig_then_the_defaults() -> None:
    base = Settings(mirror=MirrorConfig(timeout=9.0), grace=1.0)
    cfg = gwconfig(
        mirror=MirrorSettings(timeout="2s", max_queue_per_backend=0), limits=LimitSettings(max_body_bytes="1Mi")
    )
    eff = effective(base, frozenset({"mirror.timeout", "shutdown.grace"}), cfg, "cls")
    assert eff.settings.mirror.timeout == 9.0
    assert eff.settings.mirror.max_queue_per_backend == 0
    assert eff.settings.limits.max_body_bytes == 1 << 20
    assert eff.settings.grace == 1.0
    assert (eff.config, eff.gateway_class) == ("ns/cfg", "cls")
    assert eff.sources["mirror.timeout"] == "flag"
    assert eff.sources["mirror.maxQueuePerBackend"] == "GatewayConfig ns/cfg"
    assert eff.sources["limits.maxHeaders"] == "default"


def test_flags_still_win_over_the_last_valid_settings_and_over_the_defaults_a_rejected_class_falls_back_to() -> None:
    base = Settings(mirror=MirrorConfig(timeout=9.0))
    flags = frozenset({"mirror.timeout"})
    cfg = gwconfig(mirror=MirrorSettings(timeout="2s", max_queue_per_backend=0))
    why = "GatewayConfig ns/gone not found; serving with the last valid settings (GatewayConfig ns/cfg)"
    kept = effective(base, flags, cfg, "cls", fallback=why)
    assert (kept.settings.mirror.timeout, kept.sources["mirror.timeout"]) == (9.0, "flag")
    assert kept.settings.mirror.max_queue_per_backend == 0
    assert kept.sources["mirror.maxQueuePerBackend"] == "GatewayConfig ns/cfg (last valid)"
    assert kept.sources["limits.maxHeaders"] == "default"
    shown = view(kept)
    assert (shown["ref"], shown["gatewayClass"], shown["fallback"]) == ("ns/cfg", "cls", why)

    why = "GatewayConfig ns/gone not found; serving with the defaults"
    plain = effective(base, flags, None, "cls", fallback=why)
    assert (plain.settings, plain.sources["mirror.timeout"], plain.sources["mirror.maxQueuePerBackend"]) == (
        base,
        "flag",
        "default",
    )
    shown = view(plain)
    assert (shown["ref"], shown["gatewayClass"], shown["fallback"]) == (None, "cls", why)
    assert view(effective(base, flags, cfg, "cls"))["fallback"] is None


def test_a_reload_applies_what_it_may_and_keeps_the_rest_pending(caplog: pytest.LogCaptureFixture) -> None:
    state = SettingsState(effective(Settings(), frozenset(), None))
    cfg = gwconfig(
        mirror=MirrorSettings(timeout="2s", breaker_failures=0), limits=LimitSettings(handshake_timeout="3s")
    )
    with caplog.at_level(logging.WARNING, logger="mirrorgate"):
        served = state.update(effective(Settings(), frozenset(), cfg))
    assert served.mirror.timeout == 2.0  # applies at reload
    assert served.mirror.breaker_failures == 5  # the breakers keep theirs
    assert served.limits.handshake_timeout == 10.0
    assert {p["field"]: (p["served"], p["wanted"]) for p in state.pending()} == {
        "mirror.breakerFailures": (5, 0),
        "limits.handshakeTimeout": (10.0, 3.0),
    }
    assert (
        "mirror.breakerFailures changed to 0 (GatewayConfig ns/cfg); it needs a restart: still serving 5" in caplog.text
    )
    view = state.view()
    assert view["settings"]["mirror.breakerFailures"]["value"] == 5  # what is served, not what is wanted
    assert len(view["pendingRestart"]) == 2

    fresh = SettingsState(effective(Settings(), frozenset(), None))
    assert fresh.update(effective(Settings(), frozenset(), cfg), fresh=True).mirror.breaker_failures == 0
    assert fresh.pending() == []


def test_the_configuration_reference_lists_every_field_with_its_flag_and_when_it_changes() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`") and "." in cells[0]:
            rows[cells[0].strip("`")] = cells
    assert set(rows) == {f.name for f in FIELDS}
    for f in FIELDS:
        _, _, _, flag, when = rows[f.name]
        want = "restart" if f.name in RESTART else "reload"
        assert when == want, f.name
        assert flag == (f"`{f.flag}N`" if f.flag.endswith("=") else f"`{f.flag}`" if f.flag else "none"), f.name
