"""The web UI (/ui/) in a real browser (Playwright driving the distribution's Chromium) against the
running API, as a person uses it: log in with a one-time link or a pasted token, read the scope map's
lanes, pools and usage bars, open a free block and find the subnet form filled in, create the subnet,
ask why instance1 cannot reach instance2, and look at names that are HTML and run nothing.

The scene is the seed's shape: a shared scope with a pool that also numbers the external network,
an unscoped network1 and a scoped network2 (alice's) behind one router, instance1 and instance2 on
them. ``SCOPENET_UI_SCREENSHOTS=docs/images`` also saves each page there (the README shows them)."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from scopenet.bus.client import BusClient
from scopenet.contracts import topology_endpoints as ep
from scopenet.contracts.base import ByIdCommand, CallContext
from scopenet.services.api.app import RunningApi
from scopenet.services.l3_agent.heartbeat import Heartbeat
from tests.helpers import eventually
from tests.integration.api.conftest import ALICE_PROJECT, TOKENS, Http

playwright = pytest.importorskip("playwright.async_api")
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
ADMIN = CallContext(project_id="test", roles=["admin"])
XSS_NETWORK = "<img src=x onerror=alert(1)>"
XSS_SUBNET = "<script>alert(2)</script>"
XSS_POOL = "</text><script>alert(3)</script>"


async def ok(reply: Any, status: int = 201) -> Any:
    assert reply.status == status, reply.body
    return reply.body


@pytest.fixture(scope="module")
async def scene(http: Http, nats_client: Any) -> AsyncIterator[dict[str, Any]]:
    t, n = uuid.uuid4().hex[:6], uuid.uuid4().int % 200 + 20
    scope = (await ok(await http.post("/v2.0/address-scopes", body={"address_scope": {
        "name": f"ui-scope-ip4-{t}", "ip_version": 4, "shared": True}})))["address_scope"]  # fmt: skip
    pool = (await ok(await http.post("/v2.0/subnetpools", body={"subnetpool": {
        "name": f"ui-pool-ip4-{t}", "prefixes": [f"100.{n}.4.0/24"], "address_scope_id": scope["id"],
        "default_prefixlen": 26, "shared": True}})))["subnetpool"]  # fmt: skip
    evil_pool = (await ok(await http.post("/v2.0/subnetpools", body={"subnetpool": {
        "name": f"{XSS_POOL}{t}", "prefixes": [f"10.{n}.200.0/24"], "shared": True}})))["subnetpool"]  # fmt: skip

    async def network(name: str, who: str = "admin", **body: Any) -> dict[str, Any]:
        return (await ok(await http.post("/v2.0/networks", who, {"network": {"name": name, **body}})))["network"]

    async def subnet(net: dict[str, Any], who: str = "admin", **body: Any) -> dict[str, Any]:
        body = {"network_id": net["id"], "ip_version": 4, "enable_dhcp": False, **body}
        return (await ok(await http.post("/v2.0/subnets", who, {"subnet": body})))["subnet"]

    public = await network(f"ui-public-{t}", **{"router:external": True})
    await subnet(public, subnetpool_id=pool["id"], cidr=f"100.{n}.4.64/26")
    net1 = await network(f"ui-network1-{t}", "alice")
    await subnet(net1, "alice", cidr=f"10.{n}.1.0/24", name=f"ui-subnet1-{t}")
    net2 = await network(f"ui-network2-{t}", "alice")
    await subnet(net2, "alice", subnetpool_id=pool["id"], name=f"ui-subnet2-{t}")
    evil = await network(XSS_NETWORK, "alice", description=t)
    await subnet(evil, "alice", cidr=f"10.{n}.9.0/24", name=f"{XSS_SUBNET}{t}")
    router = (await ok(await http.post("/v2.0/routers", "alice", {"router": {
        "name": f"ui-router-{t}", "external_gateway_info": {"network_id": public["id"]}}})))["router"]  # fmt: skip
    for net in (net1, net2, evil):
        sub = net["id"]
        subnets = (await ok(await http.get(f"/v2.0/subnets?network_id={sub}", "alice"), 200))["subnets"]
        await ok(await http.put(f"/v2.0/routers/{router['id']}/add_router_interface", "alice",
                                {"subnet_id": subnets[0]["id"]}), 200)  # fmt: skip
    ports = [(await ok(await http.post("/v2.0/ports", "alice", {"port": {"network_id": net["id"],
              "name": f"instance{i}-{t}"}})))["port"] for i, net in enumerate((net1, net2), 1)]  # fmt: skip
    # An agent heartbeating (serving no kernel evidence), so the router is scheduled as in a running stack.
    beat = Heartbeat(nats_client.jetstream(), agent_id=f"ui-agent-{t}", host=socket.gethostname(), routers=lambda: 0,
                     interval=0.5)  # fmt: skip
    task = asyncio.create_task(beat.run())
    bus = BusClient(nats_client, timeout=10)

    async def scheduled() -> bool:
        spec = await bus.call(ep.ROUTER_SPEC, ByIdCommand(context=ADMIN, id=router["id"]))
        return spec.agent_id == f"ui-agent-{t}"

    try:
        await eventually(scheduled, what="the router scheduled on the heartbeating agent")
        yield {"t": t, "n": n, "scope": scope, "pool": pool, "evil_pool": evil_pool, "net2": net2, "ports": ports}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    async with playwright.async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        await b.close()


class Watch:
    """Everything a page did that a person would call "a script ran": dialogs, errors, console errors."""

    def __init__(self, page: Any) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    async def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        await dialog.dismiss()


async def shot(page: Any, name: str, tmp_path: Path) -> None:
    out = os.environ.get("SCOPENET_UI_SCREENSHOTS")
    for folder in [tmp_path, *([Path(out)] if out else [])]:
        await page.screenshot(path=str(folder / f"ui-{name}.png"), full_page=True)


async def login_link(api: RunningApi, who: str) -> str:
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{api.url}/ui/login-links", headers={"X-Auth-Token": TOKENS[who][0]}) as r:
            assert r.status == 200
            url: str = (await r.json())["login_link"]["url"]
            return url


async def test_map_pool_form_explain_as_alice(
    scene: dict[str, Any], browser: Any, api_server: RunningApi, tmp_path: Path
) -> None:
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    watch = Watch(page)
    t, n = scene["t"], scene["n"]

    # Anonymous: the login page. The one-time link logs in, once.
    await page.goto(f"{api_server.url}/ui/")
    assert "/ui/login" in page.url
    await shot(page, "login", tmp_path)
    link = await login_link(api_server, "alice")
    await page.goto(link)
    assert page.url.endswith("/ui/")
    assert ALICE_PROJECT in await page.locator("header .who").inner_text()
    other = await browser.new_page()
    await other.goto(link)
    assert "used already or expired" in await other.locator(".error").inner_text()
    await other.close()

    # The scope map, searched down to this scene: the scope's lane holds its pool with its usage bar.
    response = await page.goto(f"{api_server.url}/ui/?q={t}")
    headers = response.headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "'unsafe-inline'" not in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    lane = page.locator(f'g.lane[data-title="ui-scope-ip4-{t} (IPv4)"]')
    assert await lane.count() == 1
    pool_chip = lane.locator(f'g.chip.pool[data-id="{scene["pool"]["id"]}"]')
    assert (await pool_chip.locator("text").first.text_content() or "").startswith("ui-pool-ip4")  # the label
    assert f"pool ui-pool-ip4-{t}" in (await pool_chip.locator("title").text_content() or "")  # its tooltip
    assert await pool_chip.locator("text.pct").text_content() == "50.0%"  # two /26 of a /24
    assert await lane.locator("g.chip.subnet text").first.text_content() == f"ui-subnet2-{t}"
    unscoped = page.locator('g.lane[data-lane="u:4"]')
    assert f"ui-subnet1-{t}" in (await unscoped.text_content() or "")
    assert await page.locator('g.lane[data-lane="external"] g.chip.network').count() >= 1
    # The router bridges the unscoped lane and the scope's: that crossing is dropped (red, dashed).
    verdicts = await page.locator("g.router path.edge").evaluate_all("es => es.map(e => e.dataset.verdict)")
    assert "dropped" in verdicts and "snat" in verdicts and "routed" in verdicts
    await shot(page, "map", tmp_path)

    # The pool page: usage, the free blocks as chips; a chip opens the subnet form filled in.
    await pool_chip.locator("a").first.click()
    await page.wait_for_url(f"**/ui/pools/{scene['pool']['id']}")
    assert "50.0% used" in await page.locator(".meter").inner_text()
    free = f"100.{n}.4.128/25"
    assert await page.locator("table.blocks tr.free td code", has_text=free).count() == 1  # a gap as a row
    assert await page.locator("table.blocks tr.allocated").count() == 2
    await shot(page, "pool", tmp_path)
    await page.locator(f'a.free-chip[data-cidr="{free}"]').click()
    await page.wait_for_url(lambda url: "/subnets/new" in url)
    assert await page.locator("#cidr").input_value() == free
    await page.locator("#name").fill(f"ui-made-{t}")
    await page.locator("#network_id").select_option(scene["net2"]["id"])
    await page.locator("#subnet-form button[type=submit]").click()
    await page.wait_for_url(f"**/ui/pools/{scene['pool']['id']}")
    assert "100.0% used" in await page.locator(".meter").inner_text()
    assert await page.locator("table.history td code", has_text=free).count() >= 1

    # Explain: instance1 (unscoped) → instance2 (scoped) is dropped by the scope check.
    src, dst = (p["id"] for p in scene["ports"])
    await page.goto(f"{api_server.url}/ui/explain?source={src}&destination={dst}")
    assert await page.locator("#verdict").inner_text() == "dropped"
    assert "SCOPE_MISMATCH" in await page.locator("ul.reasons").inner_text()
    assert await page.locator("g.router.hop").count() == 1  # the router on the path, highlighted
    await shot(page, "explain", tmp_path)

    await page.goto(f"{api_server.url}/ui/findings")
    spanning = await page.locator("section", has_text="span scopes").inner_text()
    assert f"ui-router-{t}" in spanning
    await shot(page, "findings", tmp_path)
    assert watch.dialogs == [] and watch.errors == []
    await page.close()


async def test_injected_names_run_nothing(scene: dict[str, Any], browser: Any, api_server: RunningApi) -> None:
    page = await browser.new_page()
    watch = Watch(page)
    await page.goto(await login_link(api_server, "alice"))
    t = scene["t"]
    explain = f"/ui/explain?source={scene['ports'][0]['id']}&destination={scene['ports'][1]['id']}"
    pool = f"/ui/pools/{scene['evil_pool']['id']}"
    for path in (f"/ui/?q={t}", "/ui/?q=onerror", f"/ui/?q={t}&expand=u:4", pool, "/ui/findings", explain):
        await page.goto(api_server.url + path)
        await page.wait_for_load_state("load")
        assert await page.locator("img, main script, svg script").count() == 0, path
    await page.goto(f"{api_server.url}/ui/?q=onerror")
    assert XSS_NETWORK in await page.locator("g.chip text").all_text_contents()  # shown as the text it is
    await page.goto(f"{api_server.url}/ui/?q={t}")
    assert any(x.startswith("<script>") for x in await page.locator("g.chip text").all_text_contents())
    assert watch.dialogs == [] and watch.errors == []
    await page.close()


async def test_other_projects_see_only_their_share(scene: dict[str, Any], browser: Any, api_server: RunningApi) -> None:
    page = await browser.new_page()
    await page.goto(f"{api_server.url}/ui/login")
    await page.locator("#token").fill(TOKENS["bob"][0])
    await page.locator("form.card button[type=submit]").click()
    await page.wait_for_url("**/ui/")
    await page.goto(f"{api_server.url}/ui/?q={scene['t']}")
    body = await page.locator("svg.scopemap").text_content() or ""
    assert f"ui-pool-ip4-{scene['t']}" in body  # shared
    assert f"ui-network2-{scene['t']}" not in body and f"ui-router-{scene['t']}" not in body  # alice's
    await page.close()


async def test_forms_need_the_csrf_token(scene: dict[str, Any], api_server: RunningApi) -> None:
    cookies = {"scopenet_session": TOKENS["alice"][0], "scopenet_csrf": "c" * 32}
    form = {"cidr": f"100.{scene['n']}.4.0/26", "network_id": scene["net2"]["id"]}
    async with aiohttp.ClientSession(cookies=cookies) as s:
        url = f"{api_server.url}/ui/pools/{scene['pool']['id']}/subnets"
        async with s.post(url, data=form, allow_redirects=False) as r:
            assert r.status == 403
        async with s.post(url, data={**form, "csrf_token": "d" * 32}, allow_redirects=False) as r:
            assert r.status == 403
        async with s.post(f"{api_server.url}/ui/login", data={"token": TOKENS["admin"][0]}, allow_redirects=False) as r:
            assert r.status == 403  # login CSRF too
