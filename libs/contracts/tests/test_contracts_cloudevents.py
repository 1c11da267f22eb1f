"""CloudEvents headers: what another system's SDK reads from our messages (docs/events.md#cloudevents).

Pins the attribute scheme (a consumer routes on ``ce-type``; changing it breaks them), that every
event type of the catalogue gets a distinct, well-formed one, and that ``parse`` reads back what
``headers`` writes, whatever the case of the header names, and refuses what is not a CloudEvent.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scopenet.contracts import cloudevents as ce
from scopenet.contracts.ipam import IpAllocation
from scopenet.contracts.routerspec import RouterSpec
from scopenet.contracts.subjects import ALL_EVENTS, event

WHEN = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


class _Resource:
    id = uuid.UUID(int=7)


def test_an_event_s_headers() -> None:
    spec = event("subnet", "created")
    got = ce.event_headers(spec, id="e-1", occurred_at=WHEN, resource=_Resource())  # type: ignore[arg-type]
    assert got == {
        "ce-specversion": "1.0",
        "ce-id": "e-1",
        "ce-source": "/scopenet/ipam",
        "ce-type": "org.scopenet.ipam.subnet.created.v1",
        "ce-time": "2030-01-02T03:04:05.678901Z",
        "ce-subject": str(uuid.UUID(int=7)),
        "ce-dataschema": "urn:scopenet:proto:schemas/events/subnet.created.json",
        "content-type": "application/json",
    }


def test_an_ip_allocation_is_about_its_subnet_and_address() -> None:
    alloc = IpAllocation(subnet_id=uuid.UUID(int=1), port_id=uuid.UUID(int=2), ip_address="10.0.0.5")
    got = ce.event_headers(event("ip_allocation", "created"), id="x", occurred_at=WHEN, resource=alloc)
    assert got["ce-subject"] == f"{uuid.UUID(int=1)}/10.0.0.5"


def test_a_router_spec_s_headers() -> None:
    spec = RouterSpec(router_id=uuid.UUID(int=3), revision=4, agent_id="a1")
    got = ce.router_spec_headers(spec, id="r-4", time=WHEN)
    assert (got["ce-type"], got["ce-source"], got["ce-subject"]) == (
        "org.scopenet.topology.router_spec.v1",
        "/scopenet/topology",
        str(uuid.UUID(int=3)),
    )
    assert ce.schema_path(got["ce-dataschema"]) == "schemas/streams/router_spec.json"


def test_every_event_type_has_its_own_well_formed_ce_type() -> None:
    types = [ce.event_ce_type(ev) for ev in ALL_EVENTS]
    assert len(set(types)) == len(types)
    well_formed = re.compile(r"org\.scopenet\.(ipam|topology)\.[a-z_]+\.(created|updated|deleted)\.v1")
    assert all(well_formed.fullmatch(t) for t in types)


@given(
    id=st.text(min_size=1, max_size=40),
    subject=st.text(min_size=1, max_size=40),
    offset=st.integers(min_value=-12 * 60, max_value=12 * 60),
    upper=st.booleans(),
    data=st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
def test_parse_reads_back_what_headers_writes(id: str, subject: str, offset: int, upper: bool, data: dict) -> None:  # type: ignore[type-arg]
    when = WHEN.astimezone(timezone(timedelta(minutes=offset)))
    headers = ce.headers(id=id, service="ipam", type="org.scopenet.x.v1", subject=subject, schema="s.json", time=when)
    if upper:  # another client may hand headers over in another case
        headers = {k.upper(): v for k, v in headers.items()}
    got = ce.parse({**headers, "Nats-Msg-Id": id, "traceparent": "t"}, json.dumps(data).encode())
    assert (got.id, got.subject, got.time, got.data, got.source) == (id, subject, WHEN, data, "/scopenet/ipam")
    assert got.schema_path == "s.json" and got.extensions == {}


@pytest.mark.parametrize(
    ("headers", "complaint"),
    [
        (None, "ce-id"),
        ({"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/x"}, "ce-type"),
        ({"ce-specversion": "0.3", "ce-id": "1", "ce-source": "/x", "ce-type": "t"}, "0.3"),
    ],
)
def test_parse_refuses_what_is_not_a_cloudevent(headers: dict[str, str] | None, complaint: str) -> None:
    with pytest.raises(ce.NotACloudEvent, match=re.escape(complaint)):
        ce.parse(headers, b"{}")


def test_parse_refuses_a_body_that_is_not_the_json_it_claims() -> None:
    headers = ce.headers(id="1", service="ipam", type="t", subject="s", schema="s.json", time=WHEN)
    with pytest.raises(ce.NotACloudEvent, match="JSON"):
        ce.parse(headers, b"{not json")


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        ce.headers(id="1", service="ipam", type="t", subject="s", schema="s.json", time=datetime(2030, 1, 1))
