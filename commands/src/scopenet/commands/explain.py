"""``scopenet explain SOURCE DESTINATION``: the reachability explainer from the command line.

It asks topology (``scopenet.v1.topology.reachability.explain``) over NATS as an admin, as
``scopenet dlq`` does, with the NATS URL it is given or the one a running ``scopenet up`` recorded;
``render`` turns the answer into the lines an operator reads (``--json`` prints it whole).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from scopenet.commands.options import OperatorError, connect, stack_nats_url, state_dir_option
from scopenet.contracts import reachability as reach
from scopenet.contracts import topology_endpoints as ep
from scopenet.contracts.base import CallContext
from scopenet.contracts.errors import DomainError, TransientError

CONTEXT = CallContext(project_id="scopenet-cli", roles=["admin"])


class ExplainError(OperatorError):
    """Something the operator has to fix: one line."""


def _invalid(exc: ValidationError) -> ExplainError:
    """One line naming the request's first bad field: ``scopenet: source: String should have...``."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "request"
    return ExplainError(f"scopenet: {field}: {first['msg']}")


async def explain(url: str, request: dict[str, Any], *, timeout: float = 10.0) -> reach.Reachability:
    try:  # checked before connecting: a bad SOURCE is the operator's to fix, whether NATS runs or not
        cmd = reach.ReachabilityExplain(context=CONTEXT, **request)
    except ValidationError as exc:
        raise _invalid(exc) from None
    from scopenet.bus.client import BusClient  # here: `scopenet --help` does not pay for the NATS client

    nc = await connect(url, name="scopenet-explain")
    try:
        return await BusClient(nc, timeout=timeout).call(ep.REACHABILITY_EXPLAIN, cmd)
    except (DomainError, TransientError) as exc:
        raise ExplainError(f"scopenet: {exc.message}") from None
    finally:
        await nc.close()


def _hop(h: reach.ReachabilityHop) -> str:
    label = h.name or (str(h.id) if h.id else "")
    return f"{h.kind.replace('_', ' ')} {label}".strip()


def render(r: reach.Reachability) -> str:
    lines = [f"verdict: {r.verdict}  (IPv{r.ip_version} {r.source_ip} -> {r.destination_ip})"]
    if r.translated_source:
        lines.append(f"source translated to {r.translated_source}")
    if r.translated_destination:
        lines.append(f"destination translated to {r.translated_destination}")
    if r.hops:
        lines.append("path: " + " -> ".join(_hop(h) for h in r.hops))
    for reason in r.reasons:
        lines.append(f"{'blocked' if reason.blocking else 'note'}: {reason.code}: {reason.message}")
    k = r.kernel
    if k is not None:
        counted = f"{k.packets} packets" if k.packets is not None else "no counter"
        lines.append(f"kernel: agent {k.agent_id}, {k.namespace}, table {k.table}, chain {k.chain} ({k.outcome})")
        lines.append(f"  rule{f' [handle {k.handle}]' if k.handle is not None else ''}: {k.rule or '(not found)'}")
        lines.append(f"  {f'counter {k.counter}: ' if k.counter else ''}{counted}")
    else:
        lines.append(f"kernel: none ({r.kernel_reason})")
    for f in r.fix:
        lines.append(f"fix: {f}")
    return "\n".join(lines)


@click.command("explain")
@state_dir_option
@click.argument("source")
@click.argument("destination")
@click.option("--protocol", type=click.Choice(["tcp", "udp", "icmp"]), default="udp", show_default=True)
@click.option("--port", "destination_port", type=click.IntRange(1, 65535), default=None, help="destination port")
@click.option("--ip-version", type=click.Choice(["4", "6"]), default=None, help="when both ends are dual-stack ports")
@click.option("--no-kernel", is_flag=True, help="the model's answer only: do not ask the agent for its rule")
@click.option("--json", "as_json", is_flag=True, help="print the whole answer as JSON")
def command(
    state_dir: Path | None,
    source: str,
    destination: str,
    protocol: str,
    destination_port: int | None,
    ip_version: str | None,
    no_kernel: bool,
    as_json: bool,
) -> None:
    """Why SOURCE reaches DESTINATION or not (each a port id or an IP address): the verdict, NAT,
    hops, reasons, the deciding nftables rule with its counter, and fixes (docs/reachability.md)."""
    request: dict[str, object] = {"source": source, "destination": destination, "protocol": protocol}
    request["kernel"] = not no_kernel
    if destination_port is not None:
        request["destination_port"] = destination_port
    if ip_version is not None:
        request["ip_version"] = int(ip_version)
    try:
        answer = asyncio.run(explain(stack_nats_url(state_dir), request))
    except OperatorError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps({"reachability": answer.model_dump(mode="json")}, indent=2) if as_json else render(answer))
