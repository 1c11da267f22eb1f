"""The ``scopenet`` command: the composition root, the only module that knows every service."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from scopenet.commands import dlq, explain, keystone, services
from scopenet.commands.options import load_settings as _load
from scopenet.commands.options import settings as _settings
from scopenet.commands.options import state_dir_option
from scopenet.commands.services import SERVICES, STATELESS, app_module, factory, settings_class
from scopenet.infra.embedded import running_stack
from scopenet.infra.select import Endpoints, endpoints
from scopenet.runtime import log
from scopenet.runtime.settings import Settings

if TYPE_CHECKING:
    from scopenet.commands.keystone import LocalKeystone
    from scopenet.services.l3_agent.settings import AgentSettings


@contextlib.contextmanager
def _infrastructure(settings: Settings) -> Iterator[Endpoints]:
    """Configured URLs, else the stack a running ``scopenet up`` recorded, else embedded servers."""
    if not (settings.database_url and settings.nats_url):
        stack = running_stack(settings.state_dir)
        if stack is not None:
            yield Endpoints(
                settings.database_url or stack["database_url"], settings.nats_url or stack["nats_url"], "scopenet up"
            )
            return
    with endpoints(database_url=settings.database_url, nats_url=settings.nats_url, state_dir=settings.state_dir) as ep:
        yield ep


@contextlib.contextmanager
def _nats_only(settings: Settings) -> Iterator[Endpoints]:
    """For a service that needs NATS and nothing else: the configured URL, else the one a running
    ``scopenet up`` recorded, else an embedded nats-server (never an embedded Postgres)."""
    if settings.nats_url:
        yield Endpoints(settings.database_url or "", settings.nats_url, "configured")
        return
    stack = running_stack(settings.state_dir)
    if stack is not None:
        yield Endpoints("", stack["nats_url"], "scopenet up")
        return
    from scopenet.infra.embedded import nats_server

    with nats_server(settings.state_dir / "nats") as url:
        yield Endpoints("", url, "embedded")


def _redact(url: str) -> str:
    """``url`` without its password (``scopenet up`` prints where things are, not the keys)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if not parts.password:
        return url
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{parts.netloc.rpartition('@')[2]}"))


def _datapath_problem() -> str | None:
    from scopenet.commands.stack import datapath_problem

    return datapath_problem()


@click.group()
def cli() -> None:
    """scopenet: Neutron-style address scopes on NATS and Postgres."""


@cli.command()
@state_dir_option
@click.option(
    "--api-port",
    type=int,
    default=9696,
    envvar="SCOPENET_API_PORT",
    show_default=True,
    help="HTTP API port (Neutron v2.0 API)",
)
@click.option(
    "--tokens",
    "tokens_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    envvar="SCOPENET_TOKENS_FILE",
    help="API tokens file (YAML); default: <state dir>/tokens.yaml, written with an admin token on first start",
)
@click.option(
    "--auth",
    type=click.Choice(["tokens", "noauth", "keystone"]),
    default="tokens",
    envvar="SCOPENET_AUTH",
    show_default=True,
    help="keystone: a Keystone you run, configured with SCOPENET_KEYSTONE_* (see --keystone for one of ours)",
)
@click.option(
    "--keystone",
    "own_keystone",
    is_flag=True,
    help="run a Keystone of its own (state in <state dir>/keystone), scopenet in its catalog; implies --auth keystone",
)
def up(state_dir: Path | None, api_port: int, tokens_file: Path | None, auth: str, own_keystone: bool) -> None:
    """Run the whole stack in the foreground (Ctrl-C stops everything)."""
    from scopenet.services.api.bootstrap import prepare
    from scopenet.services.api.settings import ApiSettings
    from scopenet.services.l3_agent.settings import AgentSettings

    settings = _settings(state_dir)
    for name in SERVICES:  # every service's variables, checked before anything starts
        _load(settings_class(name), state_dir)
    agent = _load(AgentSettings, state_dir)
    log.configure(level=settings.log_level, fmt="console")
    host = _load(ApiSettings, state_dir).api_host
    try:
        api = prepare(
            state_dir=settings.state_dir,
            host=host,
            port=api_port,
            auth="keystone" if own_keystone else auth,
            tokens_file=tokens_file,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    from scopenet.commands.stack import run_stack

    with (
        _own_keystone(settings.state_dir, host=host, port=api_port, wanted=own_keystone) as keystone,
        _infrastructure(settings) as ep,
        run_stack(settings, ep, services=list(SERVICES), extra_env={**api.env, **keystone.env}, agent=agent) as stack,
    ):
        click.echo(
            f"scopenet: Postgres {_redact(ep.database_url)} and NATS {_redact(ep.nats_url)} ({ep.source}); "
            f"state in {settings.state_dir}"
        )
        if stack.datapath_problem:  # `up` never changes the machine's interfaces, routes or firewall
            click.echo(f"{stack.datapath_problem} (the L3 agent is not started: routers stay PENDING)", err=True)
        else:
            click.echo(
                f"scopenet: L3 agent with host namespace {stack.host_netns}; test instances: "
                "scopenet instance create --port PORT_ID [--name N]"
            )
        click.echo(f"scopenet: started {', '.join(stack.services)}; press Ctrl-C to stop")
        click.echo("\n".join(api.lines + keystone.lines))
        from scopenet.services.api.bootstrap import ui_line

        click.echo(
            ui_line(f"http://{host}:{api_port}", api.ui_token if auth == "tokens" and not own_keystone else None)
        )
        try:
            signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
            dead = stack.wait_any_exit()
            click.echo(f"scopenet: {', '.join(dead)} exited; stopping", err=True)
        except KeyboardInterrupt:
            click.echo("scopenet: stopping")
    click.echo("scopenet: stopped")


@cli.command()
@click.argument("name", type=click.Choice(SERVICES))
@state_dir_option
def service(name: str, state_dir: Path | None) -> None:
    """Run one service in the foreground."""
    settings = _load(settings_class(name), state_dir)
    log.configure(level=settings.log_level, fmt=settings.log_format)
    from scopenet.runtime.process import serve_until_signalled

    service_factory = factory(name)
    if name in services.DATAPATH and (problem := _datapath_problem()):
        raise SystemExit(problem)  # one line, before any server is started for it
    infrastructure = _nats_only if name in STATELESS else _infrastructure  # stateless: never a database
    with infrastructure(settings) as ep:
        asyncio.run(
            serve_until_signalled(service_factory, settings, database_url=ep.database_url, nats_url=ep.nats_url)
        )


@cli.command()
@state_dir_option
def migrate(state_dir: Path | None) -> None:
    """Bring every service's schema to the newest revision."""
    from scopenet.store.migrate import upgrade

    settings = _settings(state_dir)
    with _infrastructure(settings) as ep:
        for name in SERVICES:
            app = app_module(name)
            if not hasattr(app, "MIGRATIONS"):
                continue
            asyncio.run(upgrade(url=ep.database_url, schema=app.SCHEMA, script_location=app.MIGRATIONS))
            click.echo(f"migrated schema {app.SCHEMA}")


@cli.command()
@state_dir_option
@click.option("--keep", is_flag=True, help="keep the stack running afterwards (Ctrl-C stops it)")
@click.option(
    "--keystone",
    "own_keystone",
    is_flag=True,
    help="authenticate with Keystone tokens (a Keystone of its own, password credentials) instead of a tokens file",
)
def demo(state_dir: Path | None, keep: bool, own_keystone: bool) -> None:
    """The seed document's walkthrough end to end, with a connectivity table (exit 0: all matched;
    1: something differed; 3: the control plane matched, the datapath part needs root)."""
    import shutil
    import socket
    import tempfile

    from scopenet.commands.demo.bgp import available as bgp_available
    from scopenet.commands.demo.main import describe_keep, run
    from scopenet.commands.stack import remove_datapath, run_stack, tokens
    from scopenet.services.api.bootstrap import prepare
    from scopenet.services.l3_agent.settings import AgentSettings

    routers: list[str] = []  # what the walkthrough made, removed afterwards unless --keep
    scratch = state_dir or Path(tempfile.mkdtemp(prefix="scopenet-demo-"))
    settings = _settings(scratch)
    agent = _load(AgentSettings, scratch)
    log.configure(level="warning", fmt="console")
    with socket.socket() as s:  # a port of its own: a `scopenet up` may hold 9696
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    auth = "keystone" if own_keystone else "tokens"
    api = prepare(state_dir=scratch, host="127.0.0.1", port=port, auth=auth, tokens_file=None)
    code = 1
    try:
        with (
            _own_keystone(scratch, host="127.0.0.1", port=port, wanted=own_keystone, throwaway=True) as keystone,
            _infrastructure(settings) as ep,
        ):
            click.echo(f"scopenet demo: Postgres and NATS ({ep.source}), state in {scratch}")
            if keystone.local is not None:
                click.echo(f"scopenet demo: Keystone on {keystone.local.keystone.url}: users log in with passwords")
            # With BIRD 2 installed the external host learns its routes over BGP (the agent runs the speaker).
            use_bgp = bgp_available()
            extra_env = {**api.env, **keystone.env, "SCOPENET_LOG_LEVEL": "warning"}
            extra_env |= {"SCOPENET_AGENT_BGP": "1"} if use_bgp else {}
            with run_stack(settings, ep, services=list(SERVICES), extra_env=extra_env, agent=agent) as stack:
                code = asyncio.run(
                    run(
                        endpoint=f"http://127.0.0.1:{port}",
                        nats_url=ep.nats_url,
                        tokens=keystone.tokens() if keystone.local else tokens(scratch / "tokens.yaml"),
                        host_netns=stack.host_netns,
                        datapath_problem=stack.datapath_problem,
                        keep=keep,
                        routers=routers,
                        bgp_workdir=scratch if use_bgp and stack.host_netns else None,
                    )
                )
                if keep:
                    from scopenet.services.api.bootstrap import ui_line

                    admin_token = (keystone.tokens() if keystone.local else tokens(scratch / "tokens.yaml"))[0]
                    describe_keep([*api.lines, *keystone.lines, ui_line(f"http://127.0.0.1:{port}", admin_token)])
                    with contextlib.suppress(KeyboardInterrupt):
                        stack.wait_any_exit()
            if stack.host_netns and not keep:
                remove_datapath(stack.host_netns, routers)
    finally:
        if not keep and state_dir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    sys.exit(code)


@dataclasses.dataclass
class _KeystoneRun:
    """What ``--keystone`` adds to ``up`` and ``demo``: the API's variables and what to print."""

    local: LocalKeystone | None = None

    @property
    def env(self) -> dict[str, str]:
        return dict(self.local.api_env) if self.local else {}

    @property
    def lines(self) -> list[str]:
        return self.local.lines() if self.local else []

    def tokens(self) -> tuple[str, str, str, str]:
        """(admin token, admin project, member token, member project), from password logins."""
        from scopenet.commands.keystone import issue_token

        assert self.local is not None
        admin, admin_project = issue_token(self.local.admin_env)
        member, member_project = issue_token(self.local.member_env)
        return admin, admin_project, member, member_project


@contextlib.contextmanager
def _own_keystone(
    state_dir: Path, *, host: str, port: int, wanted: bool, throwaway: bool = False
) -> Iterator[_KeystoneRun]:
    """With ``wanted``: a Keystone of our own in ``<state_dir>/keystone``, with the API on
    ``host:port`` registered as its network service; else nothing."""
    if not wanted:
        yield _KeystoneRun()
        return
    from scopenet.commands.keystone import local_keystone
    from scopenet.infra.keystone import KeystoneUnavailable

    api_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    try:
        with local_keystone(state_dir / "keystone", api_url=api_url, throwaway=throwaway) as local:
            yield _KeystoneRun(local)
    except KeystoneUnavailable as exc:
        raise click.ClickException(str(exc)) from None


@cli.group()
def bench() -> None:
    """Benchmarks (JSON on stdout)."""


@bench.command("ipam")
@state_dir_option
@click.option("--clients", default="1,8,32", show_default=True, help="concurrency levels")
@click.option("--requests", "per_level", default=2000, show_default=True, help="allocations per level and kind")
def bench_ipam(state_dir: Path | None, clients: str, per_level: int) -> None:
    """Prefix and IP allocations/s through the NATS command path."""
    from scopenet.commands.bench.ipam import run

    settings = _settings(state_dir)
    levels = [int(c) for c in clients.split(",")]
    with _infrastructure(settings) as ep:
        result = asyncio.run(run(ep, levels=levels, per_level=per_level))
    click.echo(json.dumps(result, indent=2))


@bench.command("api")
@state_dir_option
@click.option("--clients", default="1,8,32", show_default=True, help="concurrency levels")
@click.option("--requests", "per_level", default=1000, show_default=True, help="creations per level and kind")
@click.option(
    "--auth",
    default="noauth",
    show_default=True,
    help="the API's authentication: noauth, tokens or keystone (a Keystone of its own, tokens validated and "
    "cached by auth_token); several, comma-separated (tokens,keystone), run side by side on one stack",
)
def bench_api(state_dir: Path | None, clients: str, per_level: int, auth: str) -> None:
    """The Neutron-compatible HTTP API: subnets/s, ports/s, GET and list latency."""
    from scopenet.commands.bench import api, api_auth

    modes = [m.strip() for m in auth.split(",") if m.strip()]
    if not modes or set(modes) - {"noauth", "tokens", "keystone"} or len(set(modes)) != len(modes):
        raise click.BadParameter("noauth, tokens or keystone, or several of them comma-separated", param_hint="--auth")
    settings = _settings(state_dir)
    levels = [int(c) for c in clients.split(",")]
    with _infrastructure(settings) as ep:
        if len(modes) == 1:
            result = asyncio.run(api.run(ep, levels=levels, per_level=per_level, auth=modes[0]))
        else:
            result = asyncio.run(api_auth.run(ep, levels=levels, per_level=per_level, modes=modes))
    click.echo(json.dumps(result, indent=2))


@bench.command("topology")
@state_dir_option
@click.option("--clients", default="1,8,32", show_default=True, help="concurrency levels")
@click.option("--requests", "per_level", default=1000, show_default=True, help="creations per level and kind")
@click.option("--rescopes", default=50, show_default=True, help="pool scope changes timed to the RouterSpec")
def bench_topology(state_dir: Path | None, clients: str, per_level: int, rescopes: int) -> None:
    """Ports/s and subnets/s through the NATS path; pool scope change → RouterSpec latency."""
    from scopenet.commands.bench.topology import run

    settings = _settings(state_dir)
    levels = [int(c) for c in clients.split(",")]
    with _infrastructure(settings) as ep:
        result = asyncio.run(run(ep, levels=levels, per_level=per_level, rescopes=rescopes))
    click.echo(json.dumps(result, indent=2))


@bench.command("ui")
@state_dir_option
@click.option("--routers", default=1000, show_default=True, help="routers, each crossing scopes")
@click.option("--ports", default=10000, show_default=True, help="ports in all (router ports included)")
@click.option("--runs", default=10, show_default=True, help="timed requests per page")
def bench_ui(state_dir: Path | None, routers: int, ports: int, runs: int) -> None:
    """The web UI's scope map: answer and render time at 1,000 routers and 10,000 ports (JSON)."""
    from scopenet.commands.bench.ui import run

    settings = _settings(state_dir)
    with _infrastructure(settings) as ep:
        result = asyncio.run(run(ep, routers=routers, ports=ports, runs=runs))
    click.echo(json.dumps(result, indent=2))


@bench.command("agent")
@click.option("--routers", default=200, show_default=True, help="routers for the cold start")
@click.option("--updates", default=200, show_default=True, help="spec updates timed one at a time")
def bench_agent(routers: int, updates: int) -> None:
    """L3 agent: RouterSpec → kernel latency, cold start, peak RSS (root; in a private namespace)."""
    from scopenet.commands.bench.agent import run

    problem = _datapath_problem()
    if problem:
        raise click.ClickException(problem)
    log.configure(level="warning", fmt="console")
    result = asyncio.run(run(routers=routers, updates=updates))
    click.echo(json.dumps(result, indent=2))


@bench.command("fleet")
@state_dir_option
@click.option("--routers", default=1000, show_default=True, type=click.IntRange(1, 8000), help="routers")
@click.option("--ports", default=10_000, show_default=True, type=click.IntRange(0), help="instance ports")
@click.option("--agents", default=3, show_default=True, type=click.IntRange(1, 64), help="L3 agents, a sandbox each")
@click.option("--clients", default=32, show_default=True, type=click.IntRange(1, 256), help="concurrent clients")
@click.option("--agent-ttl", default=10.0, show_default=True, help="topology's agent TTL (seconds)")
@click.option("--heartbeat-interval", default=2.0, show_default=True, help="the agents' heartbeat interval (seconds)")
@click.option("--no-failover", is_flag=True, help="skip killing the most loaded agent")
def bench_fleet(
    state_dir: Path | None,
    routers: int,
    ports: int,
    agents: int,
    clients: int,
    agent_ttl: float,
    heartbeat_interval: float,
    no_failover: bool,
) -> None:
    """Routers from cold to ACTIVE over several agents, failover after kill -9, peak RSS (root)."""
    from scopenet.commands.bench.fleet import Sizes, run

    if agents < 2 and not no_failover:
        raise click.BadParameter("a failover needs at least 2 agents (or --no-failover)", param_hint="--agents")
    problem = _datapath_problem()
    if problem:
        raise click.ClickException(problem)
    settings = _settings(state_dir)
    log.configure(level="warning", fmt="console")
    sizes = Sizes(
        routers=routers,
        ports=ports,
        agents=agents,
        clients=clients,
        agent_ttl=agent_ttl,
        heartbeat_interval=heartbeat_interval,
        failover=not no_failover,
    )
    with _infrastructure(settings) as ep:
        # A private nats-server unless one is configured: a running stack's NATS would mix its agents in.
        result = asyncio.run(run(ep, sizes, own_nats=not settings.nats_url))
    click.echo(json.dumps(result, indent=2))


@cli.group()
def nats() -> None:
    """NATS users: one per service, one per L3 agent (permissions: libs/contracts/permissions.py)."""


@nats.command("config")
@click.option(
    "--credentials",
    "credentials_file",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="JSON {user: password}; users missing from it get a new password (file mode 0600)",
)
@click.option("--agent", "agents", multiple=True, help="an L3 agent id to give a user (repeatable)")
def nats_config(credentials_file: Path, agents: tuple[str, ...]) -> None:
    """Print the nats-server `authorization` block for your own server (include it in its config,
    then `nats-server --signal reload`): admin, ipam, topology, api and l3-agent-<id> per --agent."""
    from scopenet.bus import natsauth
    from scopenet.contracts.permissions import agent_user
    from scopenet.services.l3_agent.settings import agent_id_from

    users = [*natsauth.default_users(), *(agent_user(agent_id_from(a)) for a in agents)]
    try:
        passwords = natsauth.Credentials(credentials_file).ensure(users)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(natsauth.render_authorization(passwords), nl=False)


@nats.command("user")
@state_dir_option
@click.option("--agent", "agent_id", default=None, help="the L3 agent's id (its user is l3-agent-<id>)")
@click.argument("name", required=False)
def nats_user(state_dir: Path | None, agent_id: str | None, name: str | None) -> None:
    """Mint a user on the embedded nats-server of the state dir (reloaded if running) and print its
    SCOPENET_NATS_URL: `scopenet nats user --agent node-7`, or a service's: `scopenet nats user api`."""
    from scopenet.bus import natsauth
    from scopenet.contracts.permissions import agent_user
    from scopenet.infra.embedded import add_nats_users
    from scopenet.services.l3_agent.settings import agent_id_from

    if (agent_id is None) == (name is None):
        raise click.UsageError("give either NAME (admin, ipam, topology, api) or --agent ID")
    settings = _settings(state_dir)
    user = agent_user(agent_id_from(agent_id)) if agent_id is not None else str(name)
    data_dir = settings.state_dir / "nats"
    try:
        passwords = add_nats_users(data_dir, [user])
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    port_file = data_dir / "nats-server.port"
    if not port_file.exists():
        click.echo(f"user {user} password {passwords[user]} (no nats-server runs in {data_dir}: from its next start)")
        return
    url = natsauth.user_url(f"nats://127.0.0.1:{port_file.read_text().strip()}", user, passwords[user])
    click.echo(f"SCOPENET_NATS_URL={url}")


@cli.group()
def instance() -> None:
    """Test instances: a namespace plugged into a network like a VM (needs root and a running stack)."""


def _instance_env(state_dir: Path | None) -> tuple[AgentSettings, Any]:
    """An instance is plugged into the bridges of this host's agent: the agent's settings say where."""
    from scopenet.commands.instance import plug
    from scopenet.services.l3_agent.settings import AgentSettings

    settings = _load(AgentSettings, state_dir)
    log.configure(level="warning", fmt="console")
    problem = _datapath_problem()
    if problem:
        raise click.ClickException(problem)
    try:
        return settings, plug.find_stack(settings)
    except plug.InstanceError as exc:
        raise click.ClickException(str(exc)) from None


@instance.command("create")
@state_dir_option
@click.option("--port", "port_id", required=True, help="the port (its network, MAC and fixed IPs)")
@click.option("--name", default=None, help="instance name (default: the port's name, else its id's start)")
def instance_create(state_dir: Path | None, port_id: str, name: str | None) -> None:
    """Plug a namespace into the port's network, with the port's MAC, addresses and default routes."""
    from scopenet.commands.instance import plug
    from scopenet.netlink import Namespaces, vxlan

    settings, stack = _instance_env(state_dir)

    async def go() -> str:
        nc, bus = await plug.connect(stack.nats_url, settings.request_timeout)
        ns = Namespaces()
        await ns.start()
        try:
            underlay = vxlan.underlay(settings.vxlan_local_ip, group=settings.vxlan_group, port=settings.vxlan_port)
            inst = await plug.create(ns, bus, port_id=port_id, name=name, host=stack.host_netns, underlay=underlay)
            return plug.describe(inst, stack.host_netns)
        finally:
            await ns.close()
            await nc.close()

    try:
        click.echo(asyncio.run(go()))
    except Exception as exc:  # DomainError (no such port), InstanceError, KernelError: one line
        raise click.ClickException(str(exc)) from None


@instance.command("exec", context_settings={"ignore_unknown_options": True})
@state_dir_option
@click.argument("name")
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
def instance_exec(state_dir: Path | None, name: str, argv: tuple[str, ...]) -> None:
    """Run a command inside an instance: scopenet instance exec NAME -- ping -c1 203.0.113.3"""
    from scopenet.commands.instance import plug
    from scopenet.netlink import Namespaces

    del state_dir  # instances are found by name; the option is accepted for symmetry with create/delete
    try:
        cmd = plug.exec_argv(Namespaces(), name=name, argv=argv)
    except plug.InstanceError as exc:
        raise click.ClickException(str(exc)) from None
    os.execv(cmd[0], cmd)


@instance.command("delete")
@state_dir_option
@click.argument("name")
def instance_delete(state_dir: Path | None, name: str) -> None:
    """Unplug and remove an instance."""
    from scopenet.commands.instance import plug
    from scopenet.netlink import Namespaces

    _, stack = _instance_env(state_dir)

    async def go() -> bool:
        ns = Namespaces()
        await ns.start()
        try:
            return await plug.delete(ns, name=name, host=stack.host_netns)
        finally:
            await ns.close()

    if not asyncio.run(go()):
        raise click.ClickException(f"scopenet: no instance {name}")
    click.echo(f"instance {name} deleted")


cli.add_command(keystone.group)
cli.add_command(dlq.group)
cli.add_command(explain.command)


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="scopenet")


if __name__ == "__main__":
    main()
