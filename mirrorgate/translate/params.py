"""GatewayClass ``spec.parametersRef``: whether each class of ours is accepted, and the one
GatewayConfig the process applies.

Rules (Gateway API, GatewayClass ``parametersRef``: "If the referent cannot be found, refers to
an unsupported kind, or when the data within that resource is malformed, the GatewayClass SHOULD
be rejected with the Accepted status condition set to False and an InvalidParameters reason"):
1. A class of ours without ``parametersRef`` is accepted.
2. ``parametersRef`` must name a ``mirrorgate.dev`` ``GatewayConfig`` with a ``namespace`` (the
   kind is namespaced), that exists and that admission accepted; otherwise the class is
   ``Accepted=False`` with reason ``InvalidParameters`` and a message naming the reference and
   the problem. A rejected class is still ours and its Gateways are still served: a tuning
   object must never take traffic down. The settings are then those of rule 3's winner when
   some accepted class names a valid GatewayConfig, else ``last``: the last valid GatewayConfig
   this process loaded (the caller remembers it), else none (the defaults). The message says
   which: ``GatewayConfig ns/name not found; serving with the last valid settings (GatewayConfig
   ns/old)`` / ``...; serving with the defaults``, and ``Parameters.fallback`` carries it.
3. One process applies one GatewayConfig. Among the accepted classes of ours that name one, the
   oldest class (``metadata.creationTimestamp``; a class without one, as in files, after those
   with one) wins, then the lowest name: the rule the Gateway API uses between conflicting
   routes. A class naming another GatewayConfig than the winner's stays accepted (its Gateways
   are served) and its Accepted message says which GatewayConfig is in effect instead.
4. Pure: no I/O, no memory of its own (``last`` comes in); the GatewayConfigs admission
   refused come in as ``refused`` (``"ns/name"`` -> the admission message), since a refused
   object is not in the snapshot.
"""

from collections.abc import Mapping

import msgspec

from mirrorgate.model.gateway import GatewayClass, ParametersReference
from mirrorgate.model.gwconfig import GROUP, KIND, GatewayConfig
from mirrorgate.model.snapshot import Snapshot


class ClassVerdict(msgspec.Struct, frozen=True, kw_only=True):
    accepted: bool
    message: str


class Parameters(msgspec.Struct, frozen=True, kw_only=True):
    """Each class of ours by name with its verdict, and the GatewayConfig in effect (or None)."""

    verdicts: dict[str, ClassVerdict]
    config: GatewayConfig | None = None
    chosen_by: str = ""  # the GatewayClass whose parametersRef chose ``config`` (or, rule 2, fell back)
    # Rule 2: a rejected class's reference is why ``config`` is ``last`` (or None): its message
    # (``GatewayConfig ns/name not found; serving with ...``), "" when a valid one is in effect.
    fallback: str = ""


def resolve_parameters(
    snap: Snapshot,
    classes: list[GatewayClass],
    refused: Mapping[str, str] | None = None,
    last: GatewayConfig | None = None,
) -> Parameters:
    """Rules 1-4 for ``classes`` (the classes with our controllerName); ``last``: the last valid
    GatewayConfig this process loaded, the settings a rejected class falls back to (rule 2)."""
    configs = {(c.metadata.namespace, c.metadata.name): c for c in snap.gateway_configs}
    found: dict[str, GatewayConfig] = {}
    problems: dict[str, str] = {}
    for gc in classes:
        ref = gc.spec.parameters_ref
        if ref is None:
            continue
        problem = _problem(ref, configs, refused or {})
        if problem:
            problems[gc.metadata.name] = problem
        else:
            assert ref.namespace is not None
            found[gc.metadata.name] = configs[(ref.namespace, ref.name)]
    winner = min((gc for gc in classes if gc.metadata.name in found), key=_age, default=None)
    config = found[winner.metadata.name] if winner is not None else None
    fallback = ""
    if config is not None and winner is not None:
        served = f"the settings of {KIND} {_ident(config)} (GatewayClass {winner.metadata.name})"
    elif problems:  # rule 2: no valid GatewayConfig is in effect, a rejected class falls back
        winner = min((gc for gc in classes if gc.metadata.name in problems), key=_age)
        config = last
        served = "the defaults" if last is None else f"the last valid settings ({KIND} {_ident(last)})"
        fallback = f"{problems[winner.metadata.name]}; serving with {served}"
    verdicts: dict[str, ClassVerdict] = {}
    for gc in classes:
        name = gc.metadata.name
        if name in problems:
            verdicts[name] = ClassVerdict(accepted=False, message=f"{problems[name]}; serving with {served}")
        elif name in found and config is not None and found[name].key != config.key:
            assert winner is not None
            verdicts[name] = ClassVerdict(
                accepted=True,
                message=f"GatewayClass is accepted; its GatewayConfig {_ident(found[name])} is not in effect: "
                f"GatewayClass {winner.metadata.name} (the oldest, then first by name) names "
                f"GatewayConfig {_ident(config)}, and one process applies one GatewayConfig",
            )
        else:
            verdicts[name] = ClassVerdict(accepted=True, message="GatewayClass is accepted")
    chosen_by = winner.metadata.name if winner is not None else ""
    return Parameters(verdicts=verdicts, config=config, chosen_by=chosen_by, fallback=fallback)


def _age(gc: GatewayClass) -> tuple[bool, str, str]:
    """Rule 3's order: the oldest class first (one without a timestamp last), then by name."""
    return gc.metadata.creation_timestamp == "", gc.metadata.creation_timestamp, gc.metadata.name


def _problem(
    ref: ParametersReference, configs: Mapping[tuple[str, str], GatewayConfig], refused: Mapping[str, str]
) -> str:
    if (ref.group, ref.kind) != (GROUP, KIND):
        return f"parametersRef must name a {GROUP} {KIND}, not group {ref.group!r} kind {ref.kind!r}"
    if not ref.namespace:
        return f"parametersRef.namespace is required: a {KIND} is namespaced"
    ident = f"{ref.namespace}/{ref.name}"
    if ident in refused:
        return f"{KIND} {ident} is invalid: {refused[ident]}"
    if (ref.namespace, ref.name) not in configs:
        return f"{KIND} {ident} not found"
    return ""


def _ident(cfg: GatewayConfig) -> str:
    return f"{cfg.metadata.namespace}/{cfg.metadata.name}"
