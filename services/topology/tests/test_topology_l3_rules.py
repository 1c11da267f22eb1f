"""Floating IP, BGP, mirror and reconciler rules without a database."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel

from scopenet.contracts import ipam as im
from scopenet.contracts import topology as t
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import BadRequest, Conflict, NotAuthorized, NotFound, TransientError
from scopenet.services.topology.bgp import rules as bgp
from scopenet.services.topology.floatingips import rules as fip
from scopenet.services.topology.reconciler import rules as rec
from scopenet.services.topology.scopes import rules as scopes

U = uuid.UUID
M = TypeVar("M", bound=BaseModel)


def partial(model: type[M], **fields: Any) -> M:
    """A contract with only the fields a rule reads (no validation)."""
    return model.model_construct(**fields)


ADMIN = CallContext(project_id="admin", roles=["admin"])
ALICE = CallContext(project_id="alice", roles=["member"])
EXT, P1, S1, S2, R1 = U(int=1), U(int=2), U(int=3), U(int=4), U(int=5)

# ---------------------------------------------------------------- floating IPs


def test_floating_address_is_admin_only_and_ipv4() -> None:
    fip.check_floating_address(ALICE, None)
    fip.check_floating_address(ADMIN, "203.0.113.9")
    with pytest.raises(NotAuthorized):
        fip.check_floating_address(ALICE, "203.0.113.9")
    with pytest.raises(BadRequest, match="IPv4 only"):
        fip.check_floating_address(ADMIN, "2001:db8::9")


def ext_subnet(id_: U, cidr: str, version: int = 4) -> dict[str, Any]:
    return {"id": id_, "cidr": cidr, "ip_version": version}


def test_floating_wants() -> None:
    body = t.FloatingIpCreateBody(floating_network_id=EXT)
    subnets = [
        ext_subnet(U(int=9), "2001:db8::/64", 6),
        ext_subnet(S1, "203.0.113.0/24"),
        ext_subnet(S2, "198.51.100.0/24"),
    ]
    net = {"router_external": True}
    [w] = fip.floating_wants(body, network=net, subnets=subnets)
    assert (w.subnet_id, w.ip, w.candidates) == (S1, None, (S2,))
    body = t.FloatingIpCreateBody(floating_network_id=EXT, floating_ip_address="198.51.100.7")
    [w] = fip.floating_wants(body, network=net, subnets=subnets)
    assert (w.subnet_id, w.ip) == (S2, "198.51.100.7")
    with pytest.raises(NotFound):
        fip.floating_wants(body, network=None, subnets=subnets)
    with pytest.raises(BadRequest, match="not a valid external"):
        fip.floating_wants(body, network={"router_external": False}, subnets=subnets)
    with pytest.raises(BadRequest, match="any IPv4 subnet"):
        fip.floating_wants(body, network=net, subnets=subnets[:1])
    with pytest.raises(BadRequest, match="not an IPv4 subnet"):
        fip.floating_wants(
            t.FloatingIpCreateBody(floating_network_id=EXT, subnet_id=U(int=9)), network=net, subnets=subnets
        )


def test_fixed_port_ownership() -> None:
    port = {"project_id": "alice", "net_owner": "alice"}
    assert fip.check_port(ALICE, port, port_id=P1, owner="alice") is port
    with pytest.raises(NotFound):
        fip.check_port(CallContext(project_id="bob"), port, port_id=P1, owner="bob")
    with pytest.raises(BadRequest, match="different tenant"):
        fip.check_port(
            CallContext(project_id="bob"), {"project_id": "alice", "net_owner": "bob"}, port_id=P1, owner="bob"
        )
    fip.check_port(ADMIN, port, port_id=P1, owner="bob")


def test_fixed_address_choice() -> None:
    v4, v4b, v6 = (
        {"subnet_id": S1, "ip_address": "10.0.0.5"},
        {"subnet_id": S2, "ip_address": "10.0.1.5"},
        {"subnet_id": U(int=9), "ip_address": "2001:db8::5"},
    )
    assert fip.fixed_address(P1, [v6, v4], None) == ("10.0.0.5", S1)
    assert fip.fixed_address(P1, [v4, v4b], "10.0.1.5") == ("10.0.1.5", S2)
    with pytest.raises(BadRequest, match="multiple fixed IPv4"):
        fip.fixed_address(P1, [v4, v4b], None)
    with pytest.raises(BadRequest, match="no fixed IPv4"):
        fip.fixed_address(P1, [v6], None)
    with pytest.raises(BadRequest, match="not an IPv4"):
        fip.fixed_address(P1, [v6], "2001:db8::5")
    with pytest.raises(BadRequest, match="does not have fixed ip"):
        fip.fixed_address(P1, [v4], "10.0.0.6")


def test_router_and_address_checks() -> None:
    assert fip.check_router(R1, network_id=EXT, subnet_id=S1, port_id=P1) == R1
    with pytest.raises(NotFound) as err:
        fip.check_router(None, network_id=EXT, subnet_id=S1, port_id=P1)
    assert err.value.type == "ExternalGatewayForFloatingIPNotFound"
    fip.check_address_free(None, port_id=P1, address="10.0.0.5", network_id=EXT)
    with pytest.raises(Conflict):
        fip.check_address_free("active", port_id=P1, address="10.0.0.5", network_id=EXT)
    with pytest.raises(TransientError):
        fip.check_address_free("allocating", port_id=P1, address="10.0.0.5", network_id=EXT)


# ---------------------------------------------------------------- BGP


def test_bgp_checks() -> None:
    bgp.require_admin(ADMIN, "add_bgp_peer")
    with pytest.raises(NotAuthorized):
        bgp.require_admin(ALICE, "add_bgp_peer")
    bgp.check_peer_family(peer_version=4, speaker_version=4, peer_id=P1, speaker_id=R1)
    with pytest.raises(BadRequest):
        bgp.check_peer_family(peer_version=6, speaker_version=4, peer_id=P1, speaker_id=R1)
    with pytest.raises(Conflict):
        bgp.check_peer_ip_free(S1, speaker_id=R1, peer_ip="192.0.2.1", peer_id=P1)
    with pytest.raises(Conflict):
        bgp.check_network_unbound(R1, EXT)
    bgp.check_password("s3cret", "md5")
    with pytest.raises(BadRequest):
        bgp.check_password("s3cret", "none")
    assert not bgp.spec_due([{"a": 1}], [{"a": 1}], force=False)
    assert bgp.spec_due([{"a": 1}], [{"a": 1}], force=True)
    assert bgp.spec_due([], [{"a": 1}], force=False)


# ---------------------------------------------------------------- the IPAM mirror

SCOPE_A, SCOPE_B = U(int=20), U(int=21)


def pool(scope: U | None, revision: int = 2) -> im.SubnetPool:
    return partial(im.SubnetPool, id=U(int=30), address_scope_id=scope, revision_number=revision)


def test_pool_moves() -> None:
    assert scopes.may_move(SCOPE_A, pool(SCOPE_B), None)
    assert not scopes.may_move(SCOPE_A, pool(SCOPE_A), None)
    assert scopes.may_move(SCOPE_A, pool(SCOPE_A), pool(SCOPE_B))
    assert scopes.moved(None, pool(SCOPE_A), None)
    assert not scopes.moved(None, pool(None), None)
    assert scopes.moved({"revision_number": 1, "address_scope_id": SCOPE_A}, pool(SCOPE_B), None)
    assert not scopes.moved({"revision_number": 3, "address_scope_id": SCOPE_A}, pool(SCOPE_B), None)  # older event
    assert scopes.moved({"revision_number": 2, "address_scope_id": SCOPE_B}, pool(SCOPE_B), pool(SCOPE_A))
    assert scopes.moved_pools({U(int=30): SCOPE_A, U(int=31): None}, [pool(SCOPE_B)]) == [U(int=30)]


def test_rescoped_networks() -> None:
    def net(v4: U | None) -> t.Network:
        return partial(t.Network, ipv4_address_scope=v4, ipv6_address_scope=None)

    before = {S1: net(SCOPE_A), S2: net(SCOPE_A)}
    assert scopes.rescoped(before, {S1: net(SCOPE_B), S2: net(SCOPE_A)}) == [S1]


# ---------------------------------------------------------------- the orphan sweep

NET, PORT, LOST = U(int=40), U(int=41), U(int=42)


def ipam_subnet(id_: U, network: U = NET, gateway: str | None = "10.0.0.1") -> im.Subnet:
    return partial(im.Subnet, id=id_, network_id=network, gateway_ip=gateway, allocation_pools=[])


def alloc(port: U, subnet: U, ip: str) -> im.IpAllocation:
    return partial(im.IpAllocation, port_id=port, subnet_id=subnet, ip_address=ip)


def snap(**over: Any) -> rec.Snapshot:
    args: dict[str, Any] = {
        "networks": {NET},
        "subnets": {S1: rec.SubnetCopy(S1, NET, "active", "10.0.0.1", [])},
        "ports": {PORT: "active"},
        "held": {(PORT, S1, "10.0.0.5")},
    }
    args.update(over)
    return rec.Snapshot(**args)


def test_sweep_agreement_does_nothing() -> None:
    plan = rec.sweep([ipam_subnet(S1)], [alloc(PORT, S1, "10.0.0.5")], snap(), set())
    assert plan == rec.Sweep()


def test_sweep_releases_orphans_at_once_and_suspects_live_ports() -> None:
    ips = [alloc(PORT, S1, "10.0.0.5"), alloc(PORT, S1, "10.0.0.6"), alloc(LOST, S1, "10.0.0.7")]
    first = rec.sweep([ipam_subnet(S1)], ips, snap(held=set()), set())
    assert first.release_ports == [LOST]
    assert first.release_addresses == []
    assert first.suspects == {("extra", (PORT, S1, "10.0.0.5")), ("extra", (PORT, S1, "10.0.0.6"))}
    second = rec.sweep([ipam_subnet(S1)], ips, snap(held={(PORT, S1, "10.0.0.5")}), first.suspects)
    assert second.release_addresses == [(PORT, S1, "10.0.0.6")]


def test_sweep_restores_a_lost_address_seen_twice() -> None:
    first = rec.sweep([ipam_subnet(S1)], [], snap(), set())
    assert first.restore_addresses == [] and first.suspects == {("missing", (PORT, S1, "10.0.0.5"))}
    assert rec.sweep([ipam_subnet(S1)], [], snap(), first.suspects).restore_addresses == [(PORT, S1, "10.0.0.5")]


def test_sweep_subnets() -> None:
    other = U(int=50)
    plan = rec.sweep(
        [ipam_subnet(S1, gateway="10.0.0.254"), ipam_subnet(S2), ipam_subnet(other, network=U(int=99))],
        [alloc(PORT, S1, "10.0.0.5")],
        snap(),
        set(),
    )
    assert plan.release_subnets == [S2]  # not someone else's network's
    assert [(m.id, s.gateway_ip) for m, s in plan.refresh] == [(S1, "10.0.0.254")]
    missing = rec.sweep([], [], snap(held=set()), set())
    assert missing.missing_subnets == [] and ("subnet", (S1, S1, "")) in missing.suspects
    assert rec.sweep([], [], snap(held=set()), missing.suspects).missing_subnets == [S1]


def test_busy_orphan_subnet_is_kept() -> None:
    plan = rec.sweep([ipam_subnet(S2)], [alloc(PORT, S2, "10.0.1.5")], snap(), set())
    assert plan.release_subnets == []


def test_differs() -> None:
    mine = rec.SubnetCopy(S1, NET, "active", "10.0.0.1", [{"start": "10.0.0.2", "end": "10.0.0.9"}])
    theirs = partial(
        im.Subnet, gateway_ip="10.0.0.1", allocation_pools=[im.AllocationPool(start="10.0.0.2", end="10.0.0.9")]
    )
    assert not rec.differs(mine, theirs)
    assert rec.differs(mine, theirs.model_copy(update={"gateway_ip": None}))
