"""MirrorPolicy ``status.conditions`` written by the leader, against the fake API server.

A MirrorPolicy is mirrorgate's own kind: its conditions are ours whenever we read it; condition
types we never set stay; a policy our admission refused gets ``Accepted=False`` (``Invalid``).
"""

from __future__ import annotations

from typing import Any

from mirrorgate.kube.status import Rejected, StatusSync
from tests.kube.fakeapi import FakeApiServer
from tests.kube.test_status import OLD, apply, cond, item, listing, seed, set_status, status_of, status_puts, sync

__all__ = ["sync"]

Obj = dict[str, Any]


def policy(name: str = "p") -> Obj:
    spec = {"backendRef": {"name": "svc", "port": 8080}}
    meta = {"name": name, "namespace": "default"}
    return {"apiVersion": "mirrorgate.dev/v1alpha1", "kind": "MirrorPolicy", "metadata": meta, "spec": spec}


def world(resolved: bool, gen: int = 1) -> Obj:
    reason = "ResolvedRefs" if resolved else "BackendNotFound"
    conditions = [cond("Accepted", True, gen, "Accepted"), cond("ResolvedRefs", resolved, gen, reason)]
    return listing(item(policy(), {"conditions": conditions}, gen))


def conditions(api: FakeApiServer) -> dict[str, tuple[str, str, int]]:
    found = status_of(api, "MirrorPolicy", "p", "default").get("conditions") or []
    return {c["type"]: (c["status"], c["reason"], c["observedGeneration"]) for c in found}


def policy_puts(api: FakeApiServer) -> list[str]:
    return [p for p in status_puts(api) if "/mirrorpolicies/" in p]


async def test_the_policy_conditions_are_written_and_follow_changes(api: FakeApiServer, sync: StatusSync) -> None:
    seed(api, policy())
    sync.set_leading(True)
    await apply(sync, world(True))
    assert conditions(api) == {"Accepted": ("True", "Accepted", 1), "ResolvedRefs": ("True", "ResolvedRefs", 1)}
    assert policy_puts(api) == ["/apis/mirrorgate.dev/v1alpha1/namespaces/default/mirrorpolicies/p/status"]
    await apply(sync, world(True))
    assert len(policy_puts(api)) == 1, "a settled policy gets no write"
    await apply(sync, world(False))
    assert conditions(api)["ResolvedRefs"] == ("False", "BackendNotFound", 1)


async def test_condition_types_we_never_set_stay(api: FakeApiServer, sync: StatusSync) -> None:
    seed(api, policy())
    theirs = {"type": "Audited", "status": "True", "reason": "Audited", "message": "m", "lastTransitionTime": OLD}
    set_status(api, "MirrorPolicy", "p", {"conditions": [theirs]}, "default")
    sync.set_leading(True)
    await apply(sync, world(True))
    found = status_of(api, "MirrorPolicy", "p", "default")["conditions"]
    assert [c["type"] for c in found] == ["Audited", "Accepted", "ResolvedRefs"]
    assert found[0] == theirs


async def test_a_refused_policy_gets_accepted_false_and_loses_resolved_refs(
    api: FakeApiServer, sync: StatusSync
) -> None:
    seed(api, policy())
    sync.set_leading(True)
    await apply(sync, world(True))
    refused = Rejected("MirrorPolicy", "default", "p", 2, "spec.percent: Invalid value: 101: ...")
    await apply(sync, listing(), (refused,))
    assert conditions(api) == {"Accepted": ("False", "Invalid", 2)}
    [accepted] = status_of(api, "MirrorPolicy", "p", "default")["conditions"]
    assert accepted["message"] == "spec.percent: Invalid value: 101: ..."


async def test_nothing_is_written_while_not_leading(api: FakeApiServer, sync: StatusSync) -> None:
    seed(api, policy())
    await apply(sync, world(True))
    assert policy_puts(api) == []
