"""Neutron's default policy as the services apply it (``scopenet.policy.rules``).

Pins who owns a new resource (only admin names another project; project_id and tenant_id must
agree), who may change one (its project or admin, else 403) and admin-only attributes, If-Match
compare-and-swap (412 on any other revision), RBAC targets (a project UUID or ``*``, else a 400 on
``target_tenant``) and Neutron's not-found errors, which are also the answer for what the caller may
not see (404, never 403). Combinations of admin / member / other project are generated.
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import BadRequest, NotAuthorized, NotFound, PreconditionFailed
from scopenet.policy.rules import (
    check_revision,
    not_found,
    owner_for_create,
    rbac_target,
    require_admin_for,
    require_owner,
)

PROJECTS = st.sampled_from(["p1", "p2", "p3"])
ROLES = st.sampled_from([["admin"], ["member"], ["reader"], ["member", "admin"], []])
CONTEXTS = st.builds(CallContext, project_id=PROJECTS, roles=ROLES)
NAMED = st.one_of(st.none(), st.just(""), PROJECTS)


@given(ctx=CONTEXTS, project_id=NAMED, tenant_id=NAMED)
def test_owner_for_create(ctx: CallContext, project_id: str | None, tenant_id: str | None) -> None:
    if project_id and tenant_id and project_id != tenant_id:
        with pytest.raises(BadRequest) as exc:
            owner_for_create(ctx, project_id, tenant_id)
        assert exc.value.field == "project_id" and "do not match" in exc.value.message
        return
    wanted = project_id or tenant_id or ctx.project_id
    if wanted == ctx.project_id or ctx.is_admin:
        assert owner_for_create(ctx, project_id, tenant_id) == wanted
    else:
        with pytest.raises(BadRequest) as exc:
            owner_for_create(ctx, project_id, tenant_id)
        assert exc.value.code == 400 and exc.value.field == "project_id"
        assert "requires admin privileges" in exc.value.message


def test_owner_defaults_to_the_caller() -> None:
    assert owner_for_create(CallContext(project_id="p1", roles=["member"]), None, None) == "p1"
    assert owner_for_create(CallContext(project_id="p1", roles=["admin"]), None, "p2") == "p2"


@given(ctx=CONTEXTS, owner=PROJECTS)
def test_only_the_owner_or_admin_may_change(ctx: CallContext, owner: str) -> None:
    if ctx.is_admin or owner == ctx.project_id:
        require_owner(ctx, owner, "update", "subnetpool")
    else:
        with pytest.raises(NotAuthorized) as exc:
            require_owner(ctx, owner, "update", "subnetpool")
        assert exc.value.code == 403 and exc.value.message == "rule:update_subnetpool is disallowed by policy"


@given(ctx=CONTEXTS)
def test_admin_only_attributes(ctx: CallContext) -> None:
    if ctx.is_admin:
        require_admin_for(ctx, "shared", "create_address_scope")
    else:
        with pytest.raises(NotAuthorized) as exc:
            require_admin_for(ctx, "shared", "create_address_scope")
        assert exc.value.field == "shared" and "rule:create_address_scope:shared" in exc.value.message


@given(wanted=st.one_of(st.none(), st.integers(0, 5)), current=st.integers(0, 5))
def test_if_match_revision(wanted: int | None, current: int) -> None:
    if wanted is None or wanted == current:
        check_revision(wanted, current)
    else:
        with pytest.raises(PreconditionFailed) as exc:
            check_revision(wanted, current)
        assert exc.value.code == 412 and exc.value.type == "RevisionNumberConstraintFailed"
        assert f"Constrained to {wanted}" in exc.value.message and f"is {current}" in exc.value.message


@given(st.uuids())
def test_rbac_target_is_a_project_uuid_or_everyone(project: uuid.UUID) -> None:
    assert rbac_target(str(project), None) == str(project)
    assert rbac_target(None, str(project)) == str(project)  # target_project, the newer name
    assert rbac_target("*", None) == "*"


@pytest.mark.parametrize(
    ("value", "alt", "words"),
    [
        (None, None, "not specified"),
        ("", "", "not specified"),
        ("p1", None, "neither a UUID nor '*'"),
        ("**", None, "nor"),
    ],
)
def test_rbac_target_refused(value: str | None, alt: str | None, words: str) -> None:
    with pytest.raises(BadRequest) as exc:
        rbac_target(value, alt)
    assert exc.value.field == "target_tenant" and words in exc.value.message


@pytest.mark.parametrize(
    ("kind", "type_", "text"),
    [
        ("address_scope", "AddressScopeNotFound", "Address scope {} could not be found."),
        ("subnetpool", "SubnetPoolNotFound", "Subnet pool {} could not be found."),
        ("network", "NetworkNotFound", "Network {} could not be found."),
        ("subnet", "SubnetNotFound", "Subnet {} could not be found."),
        ("port", "PortNotFound", "Port {} could not be found."),
        ("router", "RouterNotFound", "Router {} could not be found."),
        ("floatingip", "FloatingIPNotFound", "Floating IP {} could not be found."),
        ("rbac_policy", "RbacPolicyNotFound", "RBAC policy with id {} could not be found."),
    ],
)
def test_not_found_in_neutron_words(kind: str, type_: str, text: str) -> None:
    id_ = uuid.uuid4()
    exc = not_found(kind, id_, field="subnetpool_id")
    assert isinstance(exc, NotFound) and exc.code == 404
    assert (exc.type, exc.message, exc.field) == (type_, text.format(id_), "subnetpool_id")


def test_an_unknown_kind_is_a_bug_not_a_404() -> None:
    with pytest.raises(KeyError):
        not_found("widget", uuid.uuid4())
