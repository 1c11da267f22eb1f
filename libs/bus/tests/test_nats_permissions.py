"""The NATS permission table (libs/contracts/permissions.py): what each user may do, checked as the
server checks it, and a rendering nats-server accepts. The server itself enforcing it is proven in
tests/integration/test_security_nats.py."""

from __future__ import annotations

import subprocess
import sysconfig
import uuid
from pathlib import Path

import pytest

from scopenet.bus import natsauth
from scopenet.contracts import permissions as perm
from scopenet.contracts.agent_endpoints import KERNEL_RULE
from scopenet.contracts.bgp import speaker_subject
from scopenet.contracts.errors import InvalidInput, NotAuthorized
from scopenet.contracts.routerspec import AGENTS_BUCKET, ROUTERS_STREAM, agent_durable, agent_filter, router_subject
from scopenet.contracts.subjects import (
    AGENT_ENDPOINTS,
    ALL_ENDPOINTS,
    ALL_EVENTS,
    IPAM_ENDPOINTS,
    IPAM_EVENTS,
    TOPOLOGY_ENDPOINTS,
)
from scopenet.contracts.topology import dlq_subject

RID = str(uuid.uuid4())
A, B = perm.agent("node-a"), perm.agent("node-b")
STATUS = "scopenet.v1.topology.router_status.report"
REPORT = next(ep for ep in TOPOLOGY_ENDPOINTS if ep.subject == STATUS)


def test_matching_follows_nats_wildcards() -> None:
    assert perm.matches("a.*.c", "a.b.c") and perm.matches("a.*.c", "a.*.c")
    assert perm.matches("a.>", "a.b.c") and perm.matches("a.>", "a.>") and not perm.matches("a.>", "a")
    assert not perm.matches("a.*", "a.>") and not perm.matches("a.*", "a.b.c") and not perm.matches("a.b", "a.c")


def test_each_service_serves_exactly_its_own_commands() -> None:
    ipam, topo = perm.ipam(), perm.topology()
    for ep in IPAM_ENDPOINTS:
        assert perm.may_subscribe(ipam, ep.pattern) and not perm.may_subscribe(topo, ep.pattern)
    for ep in TOPOLOGY_ENDPOINTS:
        assert perm.may_subscribe(topo, ep.pattern) and not perm.may_subscribe(ipam, ep.pattern)
    assert REPORT.pattern == f"{STATUS}.*", "topology serves every agent's report subject"
    for user in (perm.api(), A):
        assert not any(perm.may_subscribe(user, ep.pattern) for ep in ALL_ENDPOINTS)


def test_events_are_published_by_their_service_only() -> None:
    ipam, topo = perm.ipam(), perm.topology()
    for ev in ALL_EVENTS:
        assert perm.may_publish(ipam, ev.subject) == (ev in IPAM_EVENTS)
        assert perm.may_publish(topo, ev.subject) == (ev not in IPAM_EVENTS)
        assert not perm.may_publish(perm.api(), ev.subject) and not perm.may_publish(A, ev.subject)


def test_api_sends_commands_and_nothing_else() -> None:
    api = perm.api()
    commands = [ep for ep in ALL_ENDPOINTS if ep.subject != STATUS and ep not in AGENT_ENDPOINTS]
    assert all(perm.may_publish(api, ep.subject) for ep in commands)
    for subject in (KERNEL_RULE.pattern, KERNEL_RULE.sender_subject("node-a")):
        assert not perm.may_publish(api, subject), "only topology asks agents for kernel evidence"
    for subject in (STATUS, REPORT.sender_subject("node-a"), REPORT.pattern):
        assert not perm.may_publish(api, subject), "router status reports are the agents' to send"
    for subject in (
        router_subject("node-a", RID),
        speaker_subject(RID),
        dlq_subject("x"),
        f"$KV.{AGENTS_BUCKET}.node-a",
        f"$JS.API.STREAM.INFO.{ROUTERS_STREAM}",
        f"$JS.API.CONSUMER.CREATE.{ROUTERS_STREAM}",
        "$SRV.PING",
    ):
        assert not perm.may_publish(api, subject), subject
    assert api.subscribe == ("_INBOX.api.>",) and not api.allow_responses


def test_an_agent_reads_and_writes_only_what_is_its_own() -> None:
    durable_a, durable_b = agent_durable("node-a"), agent_durable("node-b")
    assert not [ep.subject for ep in ALL_ENDPOINTS if perm.may_publish(A, ep.pattern)]
    assert perm.may_publish(A, f"$KV.{AGENTS_BUCKET}.node-a")
    assert perm.may_publish(A, f"$JS.API.CONSUMER.CREATE.{ROUTERS_STREAM}.{durable_a}.{agent_filter('node-a')}")
    assert perm.may_publish(A, f"$JS.API.CONSUMER.MSG.NEXT.{ROUTERS_STREAM}.{durable_a}")
    assert perm.may_publish(A, dlq_subject(perm.AGENT_DLQ)), (
        "the agent sends its dead letters there (l3_agent/specs.py)"
    )
    for subject in (
        f"$KV.{AGENTS_BUCKET}.node-b",
        f"$JS.API.CONSUMER.CREATE.{ROUTERS_STREAM}.{durable_b}.{agent_filter('node-b')}",
        f"$JS.API.CONSUMER.CREATE.{ROUTERS_STREAM}.{durable_a}.{agent_filter('node-b')}",
        f"$JS.API.CONSUMER.CREATE.{ROUTERS_STREAM}.{durable_a}",
        f"$JS.API.CONSUMER.CREATE.{ROUTERS_STREAM}",
        f"$JS.API.CONSUMER.DURABLE.CREATE.{ROUTERS_STREAM}.{durable_a}",
        f"$JS.API.CONSUMER.MSG.NEXT.{ROUTERS_STREAM}.{durable_b}",
        f"$JS.API.STREAM.MSG.GET.{ROUTERS_STREAM}",
        f"$JS.API.DIRECT.GET.{ROUTERS_STREAM}",
        f"$JS.ACK.{ROUTERS_STREAM}.{durable_b}.1.1.1.1.1",
        router_subject("node-a", RID),  # specs are topology's to write, even one's own
        router_subject("node-b", RID),
        speaker_subject(RID),
        "scopenet.v1.evt.router.updated",
    ):
        assert not perm.may_publish(A, subject), subject
    assert not perm.may_subscribe(A, router_subject("node-b", RID))
    assert not perm.may_subscribe(A, "_INBOX.l3-agent-node-b.x")
    assert not perm.may_subscribe(A, "_INBOX.>")
    assert A.subscribe == ("_INBOX.l3-agent-node-a.>", KERNEL_RULE.sender_subject("node-a"))
    assert B.subscribe == ("_INBOX.l3-agent-node-b.>", KERNEL_RULE.sender_subject("node-b"))
    assert not perm.may_subscribe(A, KERNEL_RULE.sender_subject("node-b")), "it serves its own routers' evidence only"
    assert not perm.may_subscribe(A, KERNEL_RULE.pattern)
    assert perm.may_publish(perm.topology(), KERNEL_RULE.sender_subject("node-b")), "topology asks any agent"


def test_an_agent_reports_on_its_own_subject_only() -> None:
    """NATS cannot tie a body to its sender, but it ties a subject to a user: the report subject
    carries the agent's id, A may publish only to its own, and topology checks the body against it."""
    assert REPORT.sender == "agent_id"
    assert perm.may_publish(A, f"{STATUS}.node-a") and perm.may_publish(B, f"{STATUS}.node-b")
    for subject in (f"{STATUS}.node-b", STATUS, f"{STATUS}.*", f"{STATUS}.>", f"{STATUS}.node-a.x"):
        assert not perm.may_publish(A, subject), subject
    mine = REPORT.request.model_validate(
        {"context": {"project_id": "l3-agent-node-a"}, "router_id": RID, "agent_id": "node-a", "revision": 1,
         "status": "ACTIVE"}
    )  # fmt: skip
    assert REPORT.subject_for(mine) == f"{STATUS}.node-a", "the client sends a report to its agent's subject"
    REPORT.check_sender(f"{STATUS}.node-a", mine)  # its own: heard
    with pytest.raises(NotAuthorized, match="only send as itself") as refused:
        REPORT.check_sender(f"{STATUS}.node-b", mine)  # B's subject, A's id: refused
    assert refused.value.field == "agent_id"
    with pytest.raises(InvalidInput):  # not one subject token: it could not be anyone's subject
        REPORT.sender_subject("node-a.*")
    for ep in ALL_ENDPOINTS:  # every other command but the agents' own: one subject, sent and served as is
        if ep is not REPORT and ep not in AGENT_ENDPOINTS:
            assert ep.sender is None and ep.pattern == ep.subject


def test_users_are_named_for_what_they_run() -> None:
    assert perm.for_user("l3-agent-node-a") == A and perm.for_user("api") == perm.api()
    for bad in ("nobody", "l3-agent-", "l3-agent-a.b"):
        with pytest.raises(ValueError):
            perm.for_user(bad)


def test_rendered_authorization_is_accepted_by_nats_server(tmp_path: Path) -> None:
    passwords = natsauth.Credentials(tmp_path / "creds.json").ensure(
        [*natsauth.default_users(), perm.agent_user("node-a")]
    )
    assert (tmp_path / "creds.json").stat().st_mode & 0o777 == 0o600
    conf = tmp_path / "nats.conf"
    conf.write_text(natsauth.render_authorization(passwords))
    binary = Path(sysconfig.get_path("scripts")) / "nats-server"
    check = subprocess.run([str(binary), "-c", str(conf), "-t"], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    # ensure() keeps passwords: a restart or a second run never locks a running client out
    assert natsauth.Credentials(tmp_path / "creds.json").ensure(["api"])["api"] == passwords["api"]


def test_urls_carry_the_user_and_its_inbox() -> None:
    url = natsauth.user_url("nats://admin:x@127.0.0.1:4222", "l3-agent-node-a", "p w")
    assert url == "nats://l3-agent-node-a:p%20w@127.0.0.1:4222"
    assert natsauth.inbox_prefix(url) == "_INBOX.l3-agent-node-a"
    assert natsauth.inbox_prefix("nats://127.0.0.1:4222") == "_INBOX"
