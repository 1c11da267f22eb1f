"""Every committed IPAM change is exactly one JetStream event on SCOPENET_EVENTS; a refusal is none."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from scopenet.contracts import cloudevents
from scopenet.contracts.subjects import EVENTS_STREAM
from tests.integration.conftest import ADMIN, EventTap, Ipam, IpamFixtures, fails, new_id, project

PROTO = Path(__file__).resolve().parents[2] / "proto"
IPAM_RESOURCES = ("address_scope", "subnetpool", "subnet", "ip_allocation", "rbac_policy")


def kinds(tap: EventTap, *ids: object) -> list[str]:
    return [t for t, _ in tap.about(*ids)]


async def test_each_change_is_one_event(ipam: Ipam, mk: IpamFixtures, events: EventTap, nats_client: Any) -> None:
    alice = project()
    scope = await mk.scope(ADMIN, shared=True)
    await ipam("address_scope.update", ADMIN, id=str(scope.id), address_scope={"name": "renamed"})
    pool = await mk.pool(alice, ["10.200.0.0/16"], address_scope_id=scope.id, default_prefixlen=24)
    await ipam("subnetpool.update", ADMIN, id=str(pool.id), subnetpool={"description": "d"})
    await ipam("subnetpool.add_prefixes", ADMIN, id=str(pool.id), prefixes=["10.201.0.0/24"])
    await ipam("subnetpool.remove_prefixes", ADMIN, id=str(pool.id), prefixes=["10.201.0.0/24"])
    request = mk.subnet_request(alice, new_id(), 4, None, {"subnetpool_id": str(pool.id)})
    sub = (await ipam("subnet.allocate", alice, **request)).subnet
    await ipam("subnet.allocate", alice, **request)  # a retry changes nothing
    port = new_id()
    ip = await mk.ip(alice, sub, port=port)
    await mk.ip(alice, sub, port=port)  # a retry again
    await ipam("ip.release", alice, port_id=port)
    await ipam("ip.release", alice, port_id=port)  # nothing left to release
    await ipam("subnet.release", alice, id=str(sub.id))
    await ipam("subnet.release", alice, id=str(sub.id))
    rbac_pool = await mk.pool(alice, ["10.202.0.0/16"])
    entry = await mk.share(alice, "subnetpool", rbac_pool.id, project().project_id)
    await ipam("rbac_policy.update", alice, id=str(entry.id), target_tenant=project().project_id)
    await ipam("rbac_policy.delete", alice, id=str(entry.id))
    await ipam("subnetpool.delete", alice, id=str(pool.id))
    await ipam("address_scope.delete", ADMIN, id=str(scope.id))
    await events.settle()

    assert kinds(events, scope.id) == [
        "scopenet.v1.address_scope.created",
        "scopenet.v1.address_scope.updated",
        "scopenet.v1.address_scope.deleted",
    ]
    assert kinds(events, pool.id) == [
        "scopenet.v1.subnetpool.created",
        *["scopenet.v1.subnetpool.updated"] * 3,
        "scopenet.v1.subnetpool.deleted",
    ]
    assert kinds(events, sub.id) == ["scopenet.v1.subnet.created", "scopenet.v1.subnet.deleted"]
    assert kinds(events, port) == ["scopenet.v1.ip_allocation.created", "scopenet.v1.ip_allocation.deleted"]
    assert kinds(events, entry.id) == [
        "scopenet.v1.rbac_policy.created",
        "scopenet.v1.rbac_policy.updated",
        "scopenet.v1.rbac_policy.deleted",
    ]

    by_type = dict(events.about(sub.id))
    created = by_type["scopenet.v1.subnet.created"]["resource"]
    assert (created["cidr"], created["address_scope_id"], created["gateway_ip"]) == (
        "10.200.0.0/24",
        str(scope.id),
        "10.200.0.1",
    )
    ip_created = dict(events.about(port))["scopenet.v1.ip_allocation.created"]["resource"]
    assert ip_created == {"subnet_id": str(sub.id), "port_id": port, "ip_address": ip}
    pool_events = [e for _, e in events.about(pool.id)]
    assert [e["resource"]["prefixes"] for e in pool_events[2:4]] == [
        ["10.200.0.0/16", "10.201.0.0/24"],
        ["10.200.0.0/16"],
    ]
    assert pool_events[1]["previous"]["description"] == "" and pool_events[1]["resource"]["description"] == "d"

    # envelope: subject = type, unique id sent as Nats-Msg-Id
    for subject, headers, ev in events.events:
        assert subject == ev["type"].replace("scopenet.v1.", "scopenet.v1.evt.", 1)
        assert headers["Nats-Msg-Id"] == ev["id"]
    assert len({e["id"] for _, _, e in events.events}) == len(events.events)
    info = await nats_client.jetstream().stream_info(EVENTS_STREAM)
    assert info.config.subjects == ["scopenet.v1.evt.>"]

    # CloudEvents in binary mode on every one of them (docs/events.md#cloudevents)
    for subject, headers, ev in events.events:
        if subject.split(".")[3] not in IPAM_RESOURCES:
            continue  # other services of the session publish too (topology_events tests cover theirs)
        ce = cloudevents.parse(headers, json.dumps(ev).encode())
        resource, action = subject.split(".")[3:5]
        assert (ce.id, ce.source, ce.type) == (ev["id"], "/scopenet/ipam", f"org.scopenet.ipam.{resource}.{action}.v1")
        assert ce.time == datetime.fromisoformat(ev["occurred_at"])
        assert ce.datacontenttype == "application/json" and ce.data == ev
        r = ev["resource"]
        assert ce.subject == r.get("id", f"{r.get('subnet_id')}/{r.get('ip_address')}")
        assert ce.schema_path is not None and (PROTO / ce.schema_path).is_file(), ce.dataschema


async def test_refusals_publish_nothing(ipam: Ipam, mk: IpamFixtures, events: EventTap) -> None:
    alice, bob = project(), project()
    scope = await mk.scope(ADMIN, shared=True)
    pool = await mk.pool(alice, ["10.210.0.0/24"], address_scope_id=scope.id, default_prefixlen=24)
    sub = await mk.subnet(alice, pool)
    port = new_id()
    await mk.ip(alice, sub, port=port)
    await events.settle()
    before = len(events.events)

    await fails(mk.pool(bob, ["10.210.0.0/25"], address_scope_id=scope.id), 409, "AddressScopePrefixConflict")
    await fails(mk.subnet(alice, pool), 409, "SubnetAllocationError")
    await fails(mk.ip(alice, sub, ip=sub.gateway_ip), 409, "IpAddressAlreadyAllocated")
    await fails(ipam("subnet.release", alice, id=str(sub.id)), 409, "SubnetInUse")
    await fails(ipam("subnetpool.delete", alice, id=str(pool.id)), 400, "SubnetPoolDeleteError")
    await fails(ipam("address_scope.delete", ADMIN, id=str(scope.id)), 409, "AddressScopeInUse")
    await fails(
        ipam("address_scope.update", ADMIN, id=str(scope.id), address_scope={"shared": False}),
        400,
        "AddressScopeUpdateError",
    )
    await fails(
        ipam("subnetpool.update", alice, id=str(pool.id), subnetpool={"prefixes": ["10.210.0.0/25"]}),
        400,
        "IllegalSubnetPoolUpdate",
    )
    await ipam.raw("subnetpool.create", b"{not json")
    await events.settle()
    # only the marker's own two events arrived since (from IPAM: other services of the session,
    # such as topology rescheduling routers of expired test agents, publish on their own)
    extra = [e for subject, _, e in events.events[before:] if subject.split(".")[3] in IPAM_RESOURCES]
    assert [e["type"] for e in extra] == ["scopenet.v1.address_scope.created", "scopenet.v1.address_scope.deleted"]
    assert all(e["resource"]["name"].startswith("marker-") for e in extra)


async def test_rescoping_is_one_pool_event_with_both_scopes(ipam: Ipam, mk: IpamFixtures, events: EventTap) -> None:
    """What the topology service needs to re-derive network scopes and notify routers (rule 30)."""
    alice = project()
    s1, s2 = await mk.scope(alice), await mk.scope(alice)
    pool = await mk.pool(alice, ["10.220.0.0/16"], address_scope_id=s1.id, default_prefixlen=24)
    sub = await mk.subnet(alice, pool)
    await ipam("subnetpool.update", alice, id=str(pool.id), subnetpool={"address_scope_id": str(s2.id)})
    await events.settle()
    updates = [e for t, e in events.about(pool.id) if t == "scopenet.v1.subnetpool.updated"]
    assert len(updates) == 1
    assert (updates[0]["previous"]["address_scope_id"], updates[0]["resource"]["address_scope_id"]) == (
        str(s1.id),
        str(s2.id),
    )
    assert kinds(events, sub.id) == ["scopenet.v1.subnet.created"]
