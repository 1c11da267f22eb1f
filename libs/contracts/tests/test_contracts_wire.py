"""What travels on the wire, as another system publishing commands and reading events relies on.

Pins the ``type`` string of every command (``scopenet.<service>.v1.<resource>.<verb>``, never a
Python module path: a rename inside scopenet must not change the wire), of every event, and that
they stay unique; that messages refuse unknown fields and cannot be changed after they are built;
the caller context's limits; and the errors' round trip from a reply's code and type back to the
same error class (503 is the transient root).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from scopenet.contracts.base import CallContext, ErrorBody
from scopenet.contracts.errors import (
    BadRequest,
    Conflict,
    DomainError,
    InternalError,
    NotAuthorized,
    NotFound,
    PreconditionFailed,
    TransientError,
    from_reply,
)
from scopenet.contracts.subjects import ALL_ENDPOINTS, ALL_EVENTS, IPAM_ENDPOINTS, PREFIX

#: Commands whose type names the shared message rather than the subject (kept as they always were).
_SHARED_TYPES = {
    "scopenet.v1.topology.router.add_router_interface": "scopenet.topology.v1.router.interface",
    "scopenet.v1.topology.router.remove_router_interface": "scopenet.topology.v1.router.interface",
    "scopenet.v1.topology.router.add_extraroutes": "scopenet.topology.v1.router.extraroutes",
    "scopenet.v1.topology.router.remove_extraroutes": "scopenet.topology.v1.router.extraroutes",
    "scopenet.v1.topology.router_status.report": "scopenet.v1.router_status.report",
}


def _type(model: Any) -> str | None:
    field = model.model_fields.get("type")
    return None if field is None else str(field.default)


@pytest.mark.parametrize("ep", [pytest.param(ep, id=ep.subject) for ep in ALL_ENDPOINTS])
def test_command_types_name_service_resource_and_verb(ep: Any) -> None:
    assert ep.subject == f"{PREFIX}.{ep.service}.{ep.resource}.{ep.verb}"
    wire = _type(ep.request)
    if wire is not None:
        assert wire == _SHARED_TYPES.get(ep.subject, f"scopenet.{ep.service}.v1.{ep.resource}.{ep.verb}")


def test_ipam_commands_keep_their_published_types() -> None:
    typed = {ep.subject: _type(ep.request) for ep in IPAM_ENDPOINTS if _type(ep.request)}
    assert typed["scopenet.v1.ipam.subnet.allocate"] == "scopenet.ipam.v1.subnet.allocate"
    assert typed["scopenet.v1.ipam.address_scope.create"] == "scopenet.ipam.v1.address_scope.create"
    assert all(t is not None and t.startswith("scopenet.ipam.v1.") for t in typed.values())


def test_subjects_and_event_types_are_unique() -> None:
    subjects = [ep.subject for ep in ALL_ENDPOINTS]
    assert len(subjects) == len(set(subjects))
    events = [(e.subject, e.type) for e in ALL_EVENTS]
    assert len(events) == len(set(events))
    for e in ALL_EVENTS:
        assert e.subject == f"{PREFIX}.evt.{e.resource}.{e.action}" and e.type == f"scopenet.v1.{e.resource}.{e.action}"


@pytest.mark.parametrize("ep", [pytest.param(ep, id=ep.subject) for ep in ALL_ENDPOINTS])
def test_commands_refuse_unknown_fields_and_are_frozen(ep: Any) -> None:
    with pytest.raises(ValidationError) as exc:
        ep.request.model_validate({"context": {"project_id": "p"}, "surprise": 1})
    assert any(e["type"] == "extra_forbidden" and e["loc"] == ("surprise",) for e in exc.value.errors())
    assert ep.request.model_config.get("frozen") is True and ep.reply.model_config.get("frozen") is True


def test_call_context() -> None:
    assert CallContext(project_id="p", roles=["reader", "admin"]).is_admin
    assert not CallContext(project_id="p", roles=["Admin"]).is_admin  # roles are compared exactly
    for bad in ({"project_id": ""}, {"project_id": "a\nb"}, {"project_id": "p", "roles": ["r"] * 33}):
        with pytest.raises(ValidationError):
            CallContext.model_validate(bad)
    ctx = CallContext(project_id="p")
    with pytest.raises(ValidationError):
        ctx.project_id = "q"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("cls", "code", "type_"),
    [
        (BadRequest, 400, "BadRequest"),
        (NotAuthorized, 403, "PolicyNotAuthorized"),
        (NotFound, 404, "NotFound"),
        (Conflict, 409, "Conflict"),
        (PreconditionFailed, 412, "RevisionNumberConstraintFailed"),
        (InternalError, 500, "InternalServerError"),
    ],
)
def test_error_classes_and_their_round_trip(cls: type[DomainError], code: int, type_: str) -> None:
    exc = cls("m", field="f")
    assert (exc.code, exc.type) == (code, type_)
    assert exc.to_dict() == {"code": code, "type": type_, "message": "m", "field": "f"}
    body = ErrorBody.model_validate(exc.to_dict())  # what an error reply carries
    back = from_reply(body.code, body.type, body.message, body.field)
    assert type(back) is cls and (back.code, back.type, back.message, back.field) == (code, type_, "m", "f")


@given(st.integers(100, 999), st.text(min_size=1, max_size=20), st.text(max_size=50))
def test_any_reply_code_comes_back_as_an_error_of_that_code(code: int, type_: str, message: str) -> None:
    back = from_reply(code, type_, message)
    assert back.code == code and back.message == message
    if code == 503:
        assert isinstance(back, TransientError) and back.type == "ServiceUnavailable"
    else:
        assert isinstance(back, DomainError) and back.type == type_


def test_the_field_is_sent_only_when_known() -> None:
    assert "field" not in BadRequest("m").to_dict()
    assert TransientError("m", delay=3).to_dict() == {"code": 503, "type": "ServiceUnavailable", "message": "m"}
