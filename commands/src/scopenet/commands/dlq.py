"""``scopenet dlq list|replay``: the dead letters, shown and replayed (``scopenet.bus.dlq``).

The command connects with the NATS URL it is given (``SCOPENET_NATS_URL``, whose user must be one
allowed to read ``SCOPENET_DLQ`` and publish events: ``admin``), else the one a running ``scopenet
up`` recorded in the state directory.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from scopenet.commands.options import OperatorError, connect, stack_nats_url, state_dir_option

if TYPE_CHECKING:
    from scopenet.bus import dlq

SUMMARY = 100
"""Characters of a payload shown when it is not an event."""


class DlqError(OperatorError):
    """Something the operator has to fix: one line."""


def summary(payload: str) -> str:
    """An event's type, id and resource id; the start of anything else."""
    try:
        body = json.loads(payload)
    except ValueError:
        body = None
    if isinstance(body, dict) and "type" in body:
        resource = body.get("resource")
        rid = resource.get("id") if isinstance(resource, dict) else None
        return " ".join(f"{k}={v}" for k, v in (("type", body["type"]), ("id", body.get("id")), ("resource", rid)) if v)
    flat = " ".join(payload.split())
    return flat if len(flat) <= SUMMARY else flat[: SUMMARY - 1] + "…"


def row(p: dlq.Parked) -> dict[str, Any]:
    letter = p.letter
    base: dict[str, Any] = {"id": p.seq, "time": p.time.isoformat() if p.time else None}
    if letter is None:
        raw = p.raw.decode(errors="replace")
        return {**base, "consumer": None, "subject": None, "reason": "not a dead letter", "summary": summary(raw)}
    return {
        **base,
        "consumer": letter.consumer,
        "subject": letter.subject,
        "stream": letter.stream,
        "stream_sequence": letter.stream_sequence,
        "deliveries": letter.deliveries,
        "reason": letter.reason,
        "summary": summary(letter.payload),
    }


async def list_rows(url: str, *, consumer: str | None, limit: int | None) -> list[dict[str, Any]]:
    from scopenet.bus import dlq

    nc = await connect(url, name="scopenet-dlq")
    try:
        out: list[dict[str, Any]] = []
        async for p in dlq.parked(nc.jetstream(), consumer=consumer):
            out.append(row(p))
            if limit is not None and len(out) >= limit:
                break
        return out
    finally:
        await nc.close()


def table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "no dead letters"
    cols = ("id", "time", "consumer", "subject", "stream_sequence", "deliveries", "reason", "summary")
    heads = ("ID", "PARKED", "CONSUMER", "SUBJECT", "SEQ", "DELIVERIES", "REASON", "PAYLOAD")

    def cell(r: dict[str, Any], c: str) -> str:
        v = r.get(c)
        text = "-" if v is None else str(v)
        return text[:19] if c == "time" else text[:60] + ("…" if c == "reason" and len(text) > 60 else "")

    cells = [[cell(r, c) for c in cols] for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in cells)) for i, h in enumerate(heads)]
    lines = [heads, *cells]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in lines)


async def replay(url: str, *, ids: Sequence[int], every: bool, consumer: str | None) -> list[str]:
    """Replay dead letters ``ids`` (or every one, of ``consumer``'s if given); a line per letter.
    Named ids are all checked before anything is replayed; with ``every``, letters that are not
    events (a RouterSpec an agent refused, say) are skipped with a line each, so one of them never
    blocks the replay of the rest."""
    from scopenet.bus import dlq

    nc = await connect(url, name="scopenet-dlq")
    js = nc.jetstream()
    try:
        lines = []
        if every:
            ids = []
            async for p in dlq.parked(js, consumer=consumer):
                why = dlq.unreplayable(p.seq, p.letter)
                if why is None:
                    ids.append(p.seq)
                else:
                    lines.append(f"skipped {p.seq}: {why}")
        problems = []
        for seq in [] if every else ids:
            try:
                found = await dlq.get(js, seq)
            except dlq.NotParked as exc:
                problems.append(str(exc))
                continue
            why = dlq.unreplayable(seq, found.letter)
            if why is not None:
                problems.append(why)
        if problems:
            raise DlqError("scopenet: " + "; ".join(problems) + " (nothing replayed)")
        for seq in ids:
            try:
                letter = await dlq.replay(js, seq)
            except (dlq.NotParked, dlq.NotReplayable) as exc:  # replayed by someone else meanwhile
                lines.append(f"skipped {seq}: {exc}")
                continue
            lines.append(f"replayed {seq}: {letter.subject} (stream sequence {letter.stream_sequence})")
        return lines
    finally:
        await nc.close()


@click.group("dlq")
def group() -> None:
    """Dead letters: messages a consumer could not handle, or that were never acknowledged."""


@group.command("list")
@state_dir_option
@click.option("--consumer", default=None, help="only this consumer's dead letters (e.g. topology-subnetpools)")
@click.option("--limit", type=click.IntRange(1), default=None, help="at most this many, oldest first")
@click.option("--json", "as_json", is_flag=True, help="JSON: one object per dead letter, with the full reason")
def dlq_list(state_dir: Path | None, consumer: str | None, limit: int | None, as_json: bool) -> None:
    """Show the dead letters: id, when, consumer, subject, stream sequence, deliveries, reason, payload."""
    url = stack_nats_url(state_dir)
    try:
        rows = asyncio.run(list_rows(url, consumer=consumer, limit=limit))
    except OperatorError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(rows, indent=2) if as_json else table(rows))


@group.command("replay")
@state_dir_option
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "every", is_flag=True, help="every dead letter (of --consumer's, if given)")
@click.option("--consumer", default=None, help="with --all: only this consumer's dead letters")
def dlq_replay(state_dir: Path | None, ids: tuple[int, ...], every: bool, consumer: str | None) -> None:
    """Publish dead-lettered events again on their subjects and remove them from the dead letters:
    `scopenet dlq replay 12 13`, or `scopenet dlq replay --all`."""
    if bool(ids) == every:
        raise click.UsageError("give dead letter ids (see `scopenet dlq list`) or --all")
    if consumer and not every:
        raise click.UsageError("--consumer goes with --all")
    url = stack_nats_url(state_dir)
    try:
        lines = asyncio.run(replay(url, ids=ids, every=every, consumer=consumer))
    except OperatorError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("\n".join(lines) or "no dead letters")
