"""``translate/params.py``: which GatewayConfig is in effect when several classes name one."""

from mirrorgate.model.gateway import GatewayClass, GatewayClassSpec, ParametersReference
from mirrorgate.model.gwconfig import GatewayConfig
from mirrorgate.model.meta import ObjectMeta
from mirrorgate.model.snapshot import Snapshot
from mirrorgate.translate.params import resolve_parameters

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
