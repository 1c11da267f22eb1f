"""The client's pure rules: requests built from fields, replies and typed errors, event subjects."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from scopenet.client import events, wire
from scopenet.contracts import ipam as im
from scopenet.contracts import ipam_endpoints as ipam_ep
from scopenet.contracts import topology as t
from scopenet.contracts import topology_endpoints as topo_ep
from scopenet.contracts.base import ByIdCommand, CallContext
from scopenet.contracts.errors import Conflict, InvalidInput, NotFound, TransientError

ALICE = CallContext(project_id="a" * 32, roles=["member"])


def test_a_request_is_built_from_its_fields_with_the_callers_context() -> None:
    req = wire.request_for(topo_ep.NETWORK.get, ALICE, None, {"id": str(uuid.uuid4())})
    assert isinstance(req, ByIdCommand) and req.context == ALICE
    admin = CallContext(project_id="0" * 32, roles=["admin"])
    assert wire.request_for(topo_ep.NETWORK.get, ALICE, None, {"id": req.id, "context": admin}).context == admin
    assert json.loads(wire.encode(req)) == {"context": ALICE.model_dump(exclude_unset=True), "id": str(req.id)}


def test_a_request_the_contract_refuses_never_leaves_and_names_its_field() -> None:
    with pytest.raises(InvalidInput) as err:
        wire.request_for(topo_ep.NETWORK.get, ALICE, None, {"id": "not-a-uuid"})
    assert err.value.field == "id" and "scopenet.v1.topology.network.get" in err.value.message
    with pytest.raises(InvalidInput) as err:
        wire.request_for(
            ipam_ep.SUBNETPOOL.create,
            ALICE,
            None,
            {"subnetpool": {"name": "p", "prefixes": ["10.0.0.0/8"], "bogus": 1}},
        )
    assert err.value.field is not None and "bogus" in err.value.field
    with pytest.raises(TypeError):
        wire.request_for(topo_ep.NETWORK.get, ALICE, ByIdCommand(context=ALICE, id=uuid.uuid4()), {"id": "x"})


@pytest.mark.parametrize(
    ("code", "type_", "cls"),
    [
        (404, "SubnetPoolNotFound", NotFound),
        (409, "SubnetInUse", Conflict),
        (503, "ServiceUnavailable", TransientError),
    ],
)
def test_error_replies_come_back_as_the_contracts_exceptions(code: int, type_: str, cls: type[Exception]) -> None:
    body = json.dumps({"error": {"code": code, "type": type_, "message": "m", "field": None}}).encode()
    with pytest.raises(cls) as err:
        wire.reply_for(topo_ep.NETWORK.get, body, {wire.ERROR_CODE_HEADER: str(code), wire.ERROR_HEADER: "m"})
    assert err.value.code == code
    if code != 503:
        assert err.value.type == type_  # type: ignore[attr-defined]


def test_a_garbled_error_reply_still_raises_with_its_code() -> None:
    with pytest.raises(NotFound) as err:
        wire.reply_for(topo_ep.NETWORK.get, b"<html>", {wire.ERROR_CODE_HEADER: "404", wire.ERROR_HEADER: "gone"})
    assert err.value.message == "gone"


def test_event_subjects_follow_the_model_and_actions() -> None:
    assert events.filter_subject(events.specs_of(im.SubnetEvent)) == "scopenet.v1.evt.subnet.*"
    only = events.specs_of(t.TopologySubnetEvent, ["created"])
    assert events.filter_subject(only) == "scopenet.v1.evt.topology_subnet.created"
    with pytest.raises(ValueError, match="no event"):
        events.specs_of(im.SubnetEvent, ["exploded"])


def test_a_message_without_cloudevents_headers_gets_the_attributes_the_services_would_set() -> None:
    spec = events.specs_of(im.AddressScopeEvent, ["created"])[0]
    scope = im.AddressScope(
        id=uuid.uuid4(), name="s", project_id="p", tenant_id="p", ip_version=4, shared=False, mark_id=1025
    )
    event = im.AddressScopeEvent(id=uuid.uuid4(), type=spec.type, occurred_at=datetime.now(UTC), resource=scope)
    data = event.model_dump_json().encode()
    got = events.cloudevent(spec, {}, data, event)
    assert (got.id, got.subject, got.source) == (str(event.id), str(scope.id), "/scopenet/ipam")
    assert got.type == "org.scopenet.ipam.address_scope.created.v1" and got.data["resource"]["id"] == str(scope.id)
