"""Malformed and hostile requests: a 400 that names the field, nothing written, the service keeps serving."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable
from typing import Any

from scopenet.bus.client import decode_error
from scopenet.contracts.base import CallContext
from tests.integration.conftest import ADMIN, EventTap, Ipam, IpamFixtures, fails, new_id, own, project, uniq


def ctx_json(ctx: CallContext) -> dict[str, Any]:
    body: dict[str, Any] = ctx.model_dump()
    return body


async def raw_error(ipam: Ipam, subject_tail: str, payload: bytes) -> Any:
    data, headers = await ipam.raw(subject_tail, payload)
    assert headers.get("Nats-Service-Error-Code") == "400", (data, headers)
    assert headers.get("Nats-Service-Error")
    err = decode_error(data, headers)
    assert err.code == 400
    assert json.loads(data)["error"]["code"] == 400
    return err


IPAM_RESOURCES = ("address_scope", "subnetpool", "subnet", "ip_allocation", "rbac_policy")


async def test_payloads_that_are_not_requests(ipam: Ipam, mk: IpamFixtures, events: EventTap) -> None:
    alice = project()
    await events.settle()  # every earlier test's events are in: what follows is this test's
    before = len(events.events)
    for payload in (b"", b"{not json", b"\xff\xfe\x00garbage", b"[]", b"null", b"42", b'"text"', b"[" * 100_000):
        err = await raw_error(ipam, "subnetpool.create", payload)
        assert err.type == "HTTPBadRequest"
    # a body without the caller's context, or with a broken one
    err = await raw_error(ipam, "address_scope.list", b"{}")
    assert err.field == "context"
    err = await raw_error(
        ipam, "address_scope.list", json.dumps({"context": {"project_id": "", "roles": ["admin"]}}).encode()
    )
    assert err.field == "context.project_id"
    err = await raw_error(
        ipam, "address_scope.list", json.dumps({"context": {"project_id": "p", "roles": "admin"}}).encode()
    )
    assert err.field == "context.roles"
    # a well-formed request the service refuses carries its own code in the header
    data, headers = await ipam.raw("subnetpool.get", json.dumps({"context": ctx_json(alice), "id": new_id()}).encode())
    assert headers["Nats-Service-Error-Code"] == "404"
    assert json.loads(data)["error"]["type"] == "SubnetPoolNotFound"
    # still serving, and nothing was written
    assert (await ipam("subnetpool.list", alice, filters=own(alice))).subnetpools == []
    await events.settle()
    # only IPAM's own events count: other services of the session publish on their own
    written = [e for subject, _, e in events.events[before:] if subject.split(".")[3] in IPAM_RESOURCES]
    assert all(e["resource"]["name"].startswith("marker-") for e in written)


async def test_unknown_fields_and_wrong_types(ipam: Ipam) -> None:
    alice = project()
    call = ipam.unchecked
    pool = {"name": "p", "prefixes": ["10.0.0.0/8"]}
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("subnetpool.create", {"subnetpool": pool, "colour": "red"}, "colour"),
        ("subnetpool.create", {"subnetpool": {**pool, "colour": "red"}}, "subnetpool.colour"),
        ("subnetpool.create", {"subnetpool": {**pool, "prefixes": "10.0.0.0/8"}}, "subnetpool.prefixes"),
        ("subnetpool.create", {"subnetpool": {**pool, "prefixes": [10]}}, "subnetpool.prefixes.0"),
        ("subnetpool.create", {"subnetpool": {**pool, "name": 12}}, "subnetpool.name"),
        ("subnetpool.create", {"subnetpool": {**pool, "shared": "maybe"}}, "subnetpool.shared"),
        ("subnetpool.create", {"subnetpool": {**pool, "default_quota": 1.5}}, "subnetpool.default_quota"),
        ("subnetpool.create", {"subnetpool": {**pool, "tags": ["a,b"]}}, "subnetpool.tags.0"),
        ("subnetpool.create", {"subnetpool": {**pool, "tags": ["t"] * 51}}, "subnetpool.tags"),
        ("subnetpool.create", {"subnetpool": {**pool, "description": "d" * 256}}, "subnetpool.description"),
        ("subnetpool.create", {"subnetpool": [pool]}, "subnetpool"),
        ("address_scope.create", {"address_scope": {"ip_version": "x"}}, "address_scope.ip_version"),
        ("address_scope.create", {"address_scope": {"ip_version": 4, "name": "a\x00b"}}, "address_scope.name"),
        ("address_scope.get", {"id": "not-a-uuid"}, "id"),
        ("address_scope.list", {"filters": ["ip_version"]}, "filters"),
        (
            "subnet.allocate",
            {"subnet_id": "x", "network_id": new_id(), "project_id": "p", "ip_version": 4},
            "subnet_id",
        ),
        (
            "subnet.allocate",
            {"subnet_id": new_id(), "network_id": new_id(), "project_id": "p", "ip_version": 4, "cidr": 10},
            "cidr",
        ),
        (
            "subnet.allocate",
            {"subnet_id": new_id(), "network_id": new_id(), "project_id": "p", "ip_version": 5, "cidr": "10.0.0.0/8"},
            "ip_version",
        ),
        (
            "subnet.allocate",
            {"subnet_id": new_id(), "network_id": new_id(), "project_id": "p", "ip_version": 4, "prefixlen": "big"},
            "prefixlen",
        ),
        ("ip.allocate", {"subnet_id": new_id(), "port_id": 7}, "port_id"),
        ("subnetpool.add_prefixes", {"id": new_id(), "prefixes": [None]}, "prefixes.0"),
        ("rbac_policy.update", {"id": new_id()}, "target_tenant"),
    ]
    for tail, body, field in cases:
        err = await fails(call(tail, alice, **body), 400, "HTTPBadRequest", field)
        name = field.split(".")[-1]
        assert name in err.message or field in err.message, err.message
    assert (await ipam("subnetpool.list", alice, filters=own(alice))).subnetpools == []
    assert (await ipam("address_scope.list", alice, filters=own(alice))).address_scopes == []


async def test_huge_prefix_lists_are_refused_quickly(ipam: Ipam, mk: IpamFixtures) -> None:
    alice = project()
    many = [f"10.{i // 256}.{i % 256}.0/24" for i in range(10_000)]
    started = time.perf_counter()
    await fails(mk.pool(alice, many), 400, "BadRequest", "prefixes")
    await fails(
        ipam.unchecked("subnetpool.create", alice, subnetpool={"name": "p", "prefixes": [*many, "11.0.0.0/24"]}),
        400,
        "HTTPBadRequest",
        "subnetpool.prefixes",
    )
    pool = await mk.pool(alice, ["192.168.0.0/24"])
    await fails(ipam("subnetpool.add_prefixes", alice, id=str(pool.id), prefixes=many), 400, "BadRequest", "prefixes")
    await fails(
        ipam("subnetpool.update", alice, id=str(pool.id), subnetpool={"prefixes": many}), 400, "BadRequest", "prefixes"
    )
    assert time.perf_counter() - started < 5
    # a thousand is allowed, and compacted
    thousand = [f"10.{i // 256}.{i % 256}.0/24" for i in range(1000)]
    big = await mk.pool(alice, thousand)
    assert big.prefixes == [
        "10.0.0.0/15",
        "10.2.0.0/16",
        "10.3.0.0/17",
        "10.3.128.0/18",
        "10.3.192.0/19",
        "10.3.224.0/21",
    ]
    assert [p.id for p in (await ipam("subnetpool.list", alice, filters=own(alice))).subnetpools] == [pool.id, big.id]


async def test_wrong_family_and_whole_space_prefixes(ipam: Ipam, mk: IpamFixtures) -> None:
    alice = project()
    v4 = await mk.pool(alice, ["10.0.0.0/16"])
    await fails(
        ipam("subnetpool.add_prefixes", alice, id=str(v4.id), prefixes=["2001:db8::/32"]),
        400,
        "PrefixVersionMismatch",
        "prefixes",
    )
    await fails(
        ipam("subnetpool.update", alice, id=str(v4.id), subnetpool={"prefixes": ["10.0.0.0/16", "2001:db8::/32"]}),
        400,
        "PrefixVersionMismatch",
        "prefixes",
    )
    for whole in ("0.0.0.0/0", "::/0"):
        await fails(mk.pool(alice, [whole]), 400, "BadRequest", "prefixes")
    await fails(
        ipam("subnetpool.add_prefixes", alice, id=str(v4.id), prefixes=["0.0.0.0/0"]), 400, "BadRequest", "prefixes"
    )
    await fails(mk.subnet(alice, cidr="0.0.0.0/0"), 400, "InvalidInput", "cidr")
    assert (await ipam("subnetpool.get", alice, id=str(v4.id))).subnetpool.prefixes == ["10.0.0.0/16"]
    assert [p.id for p in (await ipam("subnetpool.list", alice, filters=own(alice))).subnetpools] == [v4.id]


async def test_unicode_names(ipam: Ipam, mk: IpamFixtures) -> None:
    alice = project()
    name = "réseau-東京-🌐 ünïcode"
    scope = await mk.scope(alice, name=name)
    assert scope.name == name
    pool = await mk.pool(alice, ["10.0.0.0/8"], name=name, description="описание")
    got = (await ipam("subnetpool.get", alice, id=str(pool.id))).subnetpool
    assert (got.name, got.description) == (name, "описание")
    listed = (await ipam("address_scope.list", alice, filters={"name": name})).address_scopes
    assert [s.id for s in listed] == [scope.id]
    await fails(
        ipam.unchecked("address_scope.create", alice, address_scope={"ip_version": 4, "name": "bad\u0007bell"}),
        400,
        "HTTPBadRequest",
        "address_scope.name",
    )
    await fails(
        ipam.unchecked("subnetpool.create", alice, subnetpool={"name": " ", "prefixes": ["10.0.0.0/8"]}),
        400,
        "HTTPBadRequest",
        "subnetpool.name",
    )
    assert (await ipam("address_scope.get", ADMIN, id=str(scope.id))).address_scope.name == name


async def test_values_the_database_cannot_hold(ipam: Ipam, mk: IpamFixtures) -> None:
    """Values Postgres cannot store are refused by the contract: a 400 naming the field, never a 500."""
    alice = project()

    def raw_pool(**body: object) -> Awaitable[object]:
        return ipam.unchecked(
            "subnetpool.create", alice, subnetpool={"name": uniq("p"), "prefixes": ["10.0.0.0/8"], **body}
        )

    await fails(raw_pool(default_quota=2**31), 400, "HTTPBadRequest", "subnetpool.default_quota")
    await fails(raw_pool(default_quota=10**30), 400, "HTTPBadRequest", "subnetpool.default_quota")
    await fails(raw_pool(description="a\x00b"), 400, "HTTPBadRequest", "subnetpool.description")
    await fails(mk.pool(alice, ["10.0.0.0/8"], min_prefixlen=2**40), 400, "IllegalSubnetPoolPrefixBounds")
    assert (await ipam("subnetpool.list", alice, filters=own(alice))).subnetpools == []
    pool = await mk.pool(alice, ["10.0.0.0/8"], default_quota=2**31 - 1)
    assert pool.default_quota == 2**31 - 1
    for body, field in (({"default_quota": 2**31}, "default_quota"), ({"description": "\x00"}, "description")):
        await fails(
            ipam.unchecked("subnetpool.update", alice, id=str(pool.id), subnetpool=body),
            400,
            "HTTPBadRequest",
            f"subnetpool.{field}",
        )
    assert (await ipam("subnetpool.get", alice, id=str(pool.id))).subnetpool == pool
    await fails(mk.subnet(alice, pool, prefixlen=2**70), 400, "AddrFormatError")
