"""IPAM's commands as another system sends them: what the contracts refuse, in the words the caller gets.

A command that does not fit its model never reaches IPAM's logic: the service answers 400 with
the offending field named (``scopenet.bus.errors.from_validation``, Neutron's wording). Pins those
answers for IPAM's commands (unknown, missing and ill-typed fields, names Neutron would refuse,
bounds, batch sizes, the wire ``type`` of each command), and that what a valid command omits stays
omitted on the wire (absent and null mean different things, e.g. ``gateway_ip``).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from scopenet.bus.errors import from_validation
from scopenet.contracts import ipam as m
from scopenet.contracts.errors import BadRequest
from scopenet.contracts.subjects import IPAM_ENDPOINTS

CTX = {"project_id": "p1", "roles": ["member"]}


def allocate(**fields: Any) -> dict[str, Any]:
    base = {"context": CTX, "subnet_id": str(uuid.uuid4()), "network_id": str(uuid.uuid4()), "project_id": "p1"}
    return {**base, "ip_version": 4, **fields}


def refusal(model: type[BaseModel], data: dict[str, Any]) -> BadRequest:
    with pytest.raises(ValidationError) as exc:
        model.model_validate(data)
    err = from_validation(exc.value)
    assert err.code == 400 and err.type == "HTTPBadRequest"
    return err


@pytest.mark.parametrize(
    ("model", "data", "field", "words"),
    [
        (m.SubnetAllocate, allocate(bogus=1), "bogus", "Unrecognized attribute(s) 'bogus'"),
        (m.SubnetAllocate, {"context": CTX, "ip_version": 4}, "subnet_id", "Required attribute 'subnet_id'"),
        (m.SubnetAllocate, allocate(ip_version=5), "ip_version", "Invalid input for ip_version"),
        (m.SubnetAllocate, allocate(prefixlen="big"), "prefixlen", "Invalid input for prefixlen"),
        (m.SubnetAllocate, allocate(subnetpool_id="pool-1"), "subnetpool_id", "Invalid input for subnetpool_id"),
        (m.SubnetAllocate, allocate(project_id=""), "project_id", "Invalid input for project_id"),
        (m.SubnetAllocate, allocate(context={"project_id": "p1", "admin": True}), "context.admin", "'admin'"),
        (m.SubnetPoolCreate, {"context": CTX, "subnetpool": {"name": "", "prefixes": []}}, "subnetpool.name", "name"),
        (
            m.SubnetPoolCreate,
            {"context": CTX, "subnetpool": {"name": "p", "prefixes": [], "default_quota": -1}},
            "subnetpool.default_quota",
            "default_quota",
        ),
        (
            m.AddressScopeCreate,
            {"context": CTX, "address_scope": {"name": "tab\there", "ip_version": 4}},
            "address_scope.name",
            "Invalid input for name",
        ),
        (
            m.RbacCreate,
            {
                "context": CTX,
                "rbac_policy": {"object_type": "network", "object_id": str(uuid.uuid4()), "action": "access_as_shared"},
            },
            "rbac_policy.object_type",
            "object_type",
        ),
        (m.IpAllocate, {"context": CTX, "subnet_id": str(uuid.uuid4())}, "port_id", "'port_id' not specified"),
        (m.SubnetAllocateMany, {"context": CTX, "requests": []}, "requests", "requests"),
    ],
)
def test_refusals_name_the_field(model: type[BaseModel], data: dict[str, Any], field: str, words: str) -> None:
    err = refusal(model, data)
    assert err.field == field and words in err.message


def test_a_batch_names_the_request_at_fault() -> None:
    err = refusal(m.SubnetAllocateMany, {"context": CTX, "requests": [allocate(), allocate(prefixlen="x")]})
    assert err.field == "requests.1.prefixlen"
    err = refusal(m.SubnetAllocateMany, {"context": CTX, "requests": [allocate()] * (m.MAX_BATCH + 1)})
    assert err.field == "requests"


@given(
    st.text(alphabet=st.sampled_from(["a", "é", "-", " ", "\u00a0", "\t", "\n", "\x00", "\x1f", "\x7f"]), max_size=8)
)
def test_names_are_printable_without_surrounding_space(name: str) -> None:
    """Neutron's name_string: no control character anywhere, no whitespace at either end."""
    control = any(ord(c) < 0x20 or ord(c) == 0x7F for c in name)
    ok = not control and (name == "" or not (name[0].isspace() or name[-1].isspace()))
    data = {"context": CTX, "address_scope": {"name": name, "ip_version": 4}}
    if ok:
        assert m.AddressScopeCreate.model_validate(data).address_scope.name == name
    else:
        assert refusal(m.AddressScopeCreate, data).field == "address_scope.name"


def test_what_is_omitted_stays_omitted_on_the_wire() -> None:
    cmd = m.SubnetAllocate.model_validate(allocate())
    sent = cmd.model_dump(mode="json", exclude_unset=True)
    assert "gateway_ip" not in sent and "allocation_pools" not in sent
    no_gateway = m.SubnetAllocate.model_validate(allocate(gateway_ip=None)).model_dump(mode="json", exclude_unset=True)
    assert no_gateway["gateway_ip"] is None


def test_each_command_says_what_it_is() -> None:
    for ep in IPAM_ENDPOINTS:
        field = ep.request.model_fields.get("type")
        if field is not None:
            assert field.default == f"scopenet.ipam.v1.{ep.resource}.{ep.verb}", ep.subject
    with pytest.raises(ValidationError):
        m.SubnetAllocate.model_validate(allocate(type="scopenet.ipam.v1.subnet.update"))
