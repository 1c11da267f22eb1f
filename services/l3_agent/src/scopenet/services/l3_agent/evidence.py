"""``l3_agent.kernel.rule.<agent_id>``: the nftables rule that decides a path, read from the kernel.

Served by this agent on its own subject only (its NATS user may subscribe there and nowhere else);
topology asks it for the reachability explainer. The rule is located in the table rendered from the
spec this agent holds for the router, and its handle and counter are read at the same position of
the kernel's listing (``scopenet.datapath.evidence``). One request at a time is plenty: each is a
table listing (well under a millisecond with libnftables) and the explainer asks for one rule.
"""

from __future__ import annotations

from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from scopenet.bus.errors import from_validation, reply_for
from scopenet.contracts import agent_endpoints as aep
from scopenet.contracts import reachability as reach
from scopenet.contracts.errors import DomainError, InternalError
from scopenet.datapath import evidence, names, nft
from scopenet.netlink import Kernel, KernelError
from scopenet.runtime import log
from scopenet.services.l3_agent.reconciler import Reconciler

_log = log.get("scopenet.l3_agent.evidence")


class KernelEvidence:
    def __init__(self, nc: NATS, kernel: Kernel, reconciler: Reconciler, *, agent_id: str) -> None:
        self.nc, self.kernel, self.reconciler, self.agent_id = nc, kernel, reconciler, agent_id
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(aep.KERNEL_RULE.sender_subject(self.agent_id), cb=self._on_request)

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    async def _on_request(self, msg: Msg) -> None:
        try:
            query = reach.KernelRuleQuery.model_validate_json(msg.data)
            aep.KERNEL_RULE.check_sender(msg.subject, query)
            reply = await self.rule(query)
        except ValidationError as exc:
            await self._error(msg, from_validation(exc))
            return
        except DomainError as exc:
            await self._error(msg, exc)
            return
        except Exception:  # never leak internals: logged here, a bare 500 there
            _log.exception("kernel_rule_failed", agent_id=self.agent_id)
            await self._error(msg, InternalError("internal error"))
            return
        await msg.respond(reply.model_dump_json().encode())

    async def _error(self, msg: Msg, exc: DomainError) -> None:
        body, headers = reply_for(exc)
        await self.nc.publish(msg.reply, body, headers=headers)

    async def rule(self, q: reach.KernelRuleQuery) -> reach.KernelRule:
        namespace, table = names.namespace(q.router_id), f"inet {names.TABLE}"
        spec = self.reconciler.spec(q.router_id)
        listing: dict[str, Any] | None = None
        if spec is not None:
            try:
                listing = await self.kernel.listing(str(q.router_id))
            except KernelError:
                listing = None
        if spec is None or listing is None:
            return reach.KernelRule(namespace=namespace, table=table, present=False)
        found = evidence.find(
            nft.render_rules(spec),
            listing,
            chain=q.chain,
            contains=q.contains,
            excludes=q.excludes,
            counter=q.counter,
        )
        if found is None:
            return reach.KernelRule(namespace=namespace, table=table, present=True)
        return reach.KernelRule(
            namespace=namespace,
            table=table,
            present=True,
            rule=found.rule,
            handle=found.handle,
            packets=found.packets,
        )
