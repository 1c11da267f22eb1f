"""Neutron's quota rules, without I/O (docs/neutron.md#quotas)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import BadRequest, Conflict, NotAuthorized, NotFound
from scopenet.policy import quotas as rules

ALICE = CallContext(project_id="alice", roles=["member"])
ADMIN = CallContext(project_id="admin", roles=["admin"])


@given(limit=st.integers(-1, 50), used=st.integers(0, 60), asked=st.integers(0, 80))
def test_granted_never_exceeds_the_limit_nor_the_ask(limit: int, used: int, asked: int) -> None:
    got = rules.granted(limit, used, asked)
    assert 0 <= got <= asked
    if limit == -1:
        assert got == asked
    else:
        assert used + got <= max(limit, used)
        assert got == asked or used + got >= limit  # nothing refused while room is left


def test_sixty_four_asks_against_ten_grant_ten() -> None:
    assert rules.granted(10, 0, 64) == 10
    assert rules.granted(10, 7, 64) == 3
    assert rules.granted(10, 12, 1) == 0  # a limit lowered below usage with force admits nothing
    assert rules.granted(0, 0, 5) == 0  # 0 means none, unlike a pool's default_quota


def test_over_quota_is_neutrons_conflict() -> None:
    err = rules.over_quota(["port"])
    assert isinstance(err, Conflict)
    assert (err.code, err.type, err.message) == (409, "OverQuota", "Quota exceeded for resources: ['port'].")


def test_a_project_reads_only_its_own_quotas() -> None:
    rules.require_reader(ALICE, "alice")
    rules.require_reader(ADMIN, "alice")
    with pytest.raises(NotAuthorized) as exc:
        rules.require_reader(ALICE, "bob")
    assert exc.value.type == "AdminRequired"
    assert "Only admin is authorized to access quotas for another project" in exc.value.message


def test_only_admin_changes_quotas() -> None:
    rules.require_admin(ADMIN, "update")
    with pytest.raises(NotAuthorized, match="rule:update_quota is disallowed by policy"):
        rules.require_admin(ALICE, "update")


def test_own_limits_win_over_defaults() -> None:
    assert rules.effective({"network": 100, "port": 500}, {"port": 3, "other": 1}) == {"network": 100, "port": 3}


def test_a_limit_below_usage_is_refused_unless_unlimited() -> None:
    rules.check_not_below_usage({"network": 5, "port": -1}, {"network": 5, "port": 900})
    with pytest.raises(BadRequest) as exc:
        rules.check_not_below_usage({"network": 4}, {"network": 5})
    assert exc.value.message == "Quota limit 4 for network must be greater than or equal to already used 5"


def test_unknown_resources_are_named() -> None:
    with pytest.raises(NotFound, match=r"Unknown quota resources \['bogus'\]"):
        rules.check_limits({"network": 1}, {"bogus": 1, "network": 2})


def test_delete_without_own_limits_is_neutrons_404() -> None:
    err = rules.no_project_quota("p1")
    assert (err.code, err.type, err.message) == (404, "TenantQuotaNotFound", "Quota for project p1 could not be found.")
