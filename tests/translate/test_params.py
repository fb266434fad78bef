"""``translate/params.py``: which GatewayConfig is in effect when several classes name one."""

from mirrorgate.model.gateway import GatewayClass, GatewayClassSpec, ParametersReference
from mirrorgate.model.gwconfig import GatewayConfig
from mirrorgate.model.meta import ObjectMeta
from mirrorgate.model.snapshot import Snapshot
from mirrorgate.translate.params import ClassVerdict, resolve_parameters

CONTROLLER = "mirrorgate.dev/gateway-controller"


def cls(name: str, config: str, created: str = "") -> GatewayClass:
    ref = ParametersReference(group="mirrorgate.dev", kind="GatewayConfig", name=config, namespace="ns")
    return GatewayClass(
        api_version="gateway.networking.k8s.io/v1",
        kind="GatewayClass",
        metadata=ObjectMeta(name=name, namespace="", creation_timestamp=created),
        spec=GatewayClassSpec(controller_name=CONTROLLER, parameters_ref=ref),
    )


def cfg(name: str) -> GatewayConfig:
    return GatewayConfig(
        api_version="mirrorgate.dev/v1alpha1", kind="GatewayConfig", metadata=ObjectMeta(name=name, namespace="ns")
    )


def test_the_oldest_class_wins_then_the_first_by_name_and_a_class_without_a_timestamp_comes_last() -> None:
    classes = [
        cls("a", "one"),  # no timestamp: after those with one
        cls("b", "two", "2026-01-02T00:00:00Z"),
        cls("c", "three", "2026-01-01T00:00:00Z"),  # the oldest
    ]
    snap = Snapshot.of([cfg("one"), cfg("two"), cfg("three"), *classes])
    params = resolve_parameters(snap, classes)
    assert params.config is not None
    assert (params.config.metadata.name, params.chosen_by) == ("three", "c")
    assert all(v.accepted for v in params.verdicts.values())
    assert "GatewayConfig ns/one is not in effect: GatewayClass c" in params.verdicts["a"].message
    assert params.verdicts["c"].message == "GatewayClass is accepted"

    tied = [cls("z", "one", "2026-01-01T00:00:00Z"), cls("y", "two", "2026-01-01T00:00:00Z")]
    assert resolve_parameters(snap, tied).chosen_by == "y"


def test_classes_naming_the_same_config_are_all_plainly_accepted_and_a_rejected_class_chooses_nothing() -> None:
    classes = [cls("a", "one"), cls("b", "one"), cls("c", "missing", "2020-01-01T00:00:00Z")]
    params = resolve_parameters(Snapshot.of([cfg("one"), *classes]), classes)
    assert params.chosen_by == "a"
    assert params.verdicts["b"].message == "GatewayClass is accepted"
    assert not params.verdicts["c"].accepted


def test_a_rejected_class_alone_falls_back_to_the_last_valid_config_else_the_defaults_and_says_which() -> None:
    classes = [cls("b", "gone"), cls("a", "gone-too")]
    snap = Snapshot.of([*classes])
    fresh = resolve_parameters(snap, classes)
    assert (fresh.config, fresh.chosen_by) == (None, "a")  # first by name among the rejected
    assert fresh.fallback == "GatewayConfig ns/gone-too not found; serving with the defaults"
    assert fresh.verdicts["b"] == ClassVerdict(
        accepted=False, message="GatewayConfig ns/gone not found; serving with the defaults"
    )

    kept = resolve_parameters(snap, classes, last=cfg("old"))
    assert kept.config == cfg("old")
    last = "serving with the last valid settings (GatewayConfig ns/old)"
    assert kept.fallback == f"GatewayConfig ns/gone-too not found; {last}"
    assert not kept.verdicts["b"].accepted
    assert kept.verdicts["b"].message == f"GatewayConfig ns/gone not found; {last}"


def test_a_rejected_class_beside_an_accepted_one_is_served_with_the_config_in_effect_not_the_last() -> None:
    classes = [cls("a", "missing"), cls("b", "one")]
    params = resolve_parameters(Snapshot.of([cfg("one"), *classes]), classes, last=cfg("old"))
    assert (params.config, params.chosen_by, params.fallback) == (cfg("one"), "b", "")
    assert params.verdicts["a"] == ClassVerdict(
        accepted=False,
        message="GatewayConfig ns/missing not found; "
        "serving with the settings of GatewayConfig ns/one (GatewayClass b)",
    )
