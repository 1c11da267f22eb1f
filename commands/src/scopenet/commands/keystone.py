"""``scopenet keystone register`` and the Keystone that ``up``, ``demo`` and ``bench`` can run.

Registering puts scopenet into a Keystone the way Neutron is put there: a ``network`` service with
public, internal and admin endpoints in one region (so ``openstack network list`` finds scopenet in
the catalog, no ``OS_ENDPOINT``), and a service user with the ``service`` role on the ``service``
project, which the API's ``auth_token`` logs in as to validate tokens. Every step finds before it
creates, so running it again changes only what differs (a moved URL, a new password).

It talks to Keystone with openstacksdk, as an admin whose credentials come the usual way: ``OS_*``
variables, or ``OS_CLOUD`` / ``--os-cloud`` and a ``clouds.yaml``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from scopenet.infra.keystone import REGION, Keystone, kept_secret, keystone_server, password_env

INTERFACES = ("public", "internal", "admin")
SERVICE_TYPE = "network"


def connect(*, cloud: str | None = None, env: Mapping[str, str] | None = None) -> Any:
    """An openstacksdk connection: with ``env``, exactly its ``OS_*`` credentials (this process's
    variables and clouds.yaml ignored); else ``cloud`` from clouds.yaml, else this process's ``OS_*``."""
    import openstack

    if env is None:
        return openstack.connect(cloud=cloud) if cloud else openstack.connect()
    args: dict[str, Any] = {k[3:].lower(): v for k, v in env.items() if k.startswith("OS_")}
    return openstack.connect(load_envvars=False, load_yaml_config=False, **args)


def _find(finder: Any, name: str, **query: Any) -> Any:
    """``finder(name)`` or None (openstacksdk's own "or None" is deprecated)."""
    from openstack import exceptions

    try:
        return finder(name, ignore_missing=False, **query)
    except exceptions.NotFoundException:
        return None


def _ensure_service(conn: Any, name: str) -> tuple[Any, str]:
    found = [s for s in conn.identity.services(type=SERVICE_TYPE) if s.name == name]
    if found:
        return found[0], f"service {name} ({SERVICE_TYPE}) exists: {found[0].id}"
    service = conn.identity.create_service(
        name=name, type=SERVICE_TYPE, description="scopenet: Neutron-compatible networking API", is_enabled=True
    )
    return service, f"service {name} ({SERVICE_TYPE}) created: {service.id}"


def _ensure_endpoints(conn: Any, service: Any, urls: Mapping[str, str], region: str) -> list[str]:
    out = []
    existing = {e.interface: e for e in conn.identity.endpoints(service_id=service.id) if e.region_id == region}
    for interface, url in urls.items():
        endpoint = existing.get(interface)
        if endpoint is None:
            conn.identity.create_endpoint(
                service_id=service.id, interface=interface, url=url, region_id=region, is_enabled=True
            )
            out.append(f"endpoint {interface} {url} ({region}) created")
        elif endpoint.url != url:
            conn.identity.update_endpoint(endpoint, url=url)
            out.append(f"endpoint {interface} moved from {endpoint.url} to {url}")
        else:
            out.append(f"endpoint {interface} {url} exists")
    return out


def ensure_user(
    conn: Any, *, name: str, password: str, project: str, roles: list[str], domain: str = "default"
) -> list[str]:
    """A user with ``password`` and ``roles`` on ``project`` (both created when missing)."""
    out = []
    proj = _find(conn.identity.find_project, project, domain_id=domain)
    if proj is None:
        proj = conn.identity.create_project(name=project, domain_id=domain, description="")
        out.append(f"project {project} created: {proj.id}")
    user = _find(conn.identity.find_user, name, domain_id=domain)
    if user is None:
        user = conn.identity.create_user(name=name, password=password, domain_id=domain, default_project_id=proj.id)
        out.append(f"user {name} created: {user.id}")
    else:
        conn.identity.update_user(user, password=password)
        out.append(f"user {name} exists: password set")
    for role_name in roles:
        role = _find(conn.identity.find_role, role_name) or conn.identity.create_role(name=role_name)
        conn.identity.assign_project_role_to_user(proj, user, role)
    out.append(f"user {name} has {', '.join(roles)} on project {project}")
    return out


def register(
    conn: Any,
    *,
    url: str,
    internal_url: str | None = None,
    admin_url: str | None = None,
    region: str = REGION,
    name: str = "scopenet",
    service_user: str | None = None,
    service_password: str | None = None,
    service_project: str = "service",
) -> list[str]:
    """Catalog entries for scopenet (and its service user when ``service_user``); what was done."""
    service, said = _ensure_service(conn, name)
    urls = {"public": url, "internal": internal_url or url, "admin": admin_url or internal_url or url}
    out = [said, *_ensure_endpoints(conn, service, urls, region)]
    if service_user:
        if not service_password:
            raise ValueError("a service user needs a password (--service-password or SCOPENET_KEYSTONE_PASSWORD)")
        out += ensure_user(
            conn, name=service_user, password=service_password, project=service_project, roles=["service"]
        )
    return out


@dataclass(frozen=True)
class LocalKeystone:
    """A Keystone of our own with scopenet registered in it, and a member user of a demo project."""

    keystone: Keystone
    api_env: dict[str, str]
    """``SCOPENET_*`` of an API validating this Keystone's tokens (service user ``scopenet``)."""
    member_env: dict[str, str]
    """``OS_*`` of ``demo`` (member and reader of project ``demo``)."""

    @property
    def admin_env(self) -> dict[str, str]:
        return self.keystone.admin_env()

    def lines(self) -> list[str]:
        """What ``up`` prints: how to point the openstack CLI at this Keystone."""
        admin = " ".join(f"{k}={v}" for k, v in self.admin_env.items())
        return [
            f"scopenet: Keystone on {self.keystone.url} (state in {self.keystone.data_dir}); "
            "scopenet is its network service",
            f"  export {admin}",
            "  openstack network list",
        ]


@contextlib.contextmanager
def local_keystone(
    data_dir: Path,
    *,
    api_url: str,
    token_cache_time: int | None = None,
    port: int | None = None,
    throwaway: bool = False,
) -> Iterator[LocalKeystone]:
    """Run a Keystone in ``data_dir``, register ``api_url`` as its network service, make the service
    user and a demo member; yields the API's variables and the users' credentials. A ``throwaway``
    Keystone (demo, benchmarks) hashes passwords cheaply (``keystone_server``)."""
    with keystone_server(data_dir, port=port, password_hash_rounds=4 if throwaway else None) as ks:
        service_password = kept_secret(data_dir / "scopenet-password")
        member_password = kept_secret(data_dir / "demo-password")
        conn = connect(env=ks.admin_env())
        try:
            register(conn, url=api_url, service_user="scopenet", service_password=service_password)
            ensure_user(conn, name="demo", password=member_password, project="demo", roles=["member", "reader"])
        finally:
            conn.close()
        api_env = {
            "SCOPENET_AUTH": "keystone",
            "SCOPENET_KEYSTONE_AUTH_URL": ks.url,
            "SCOPENET_KEYSTONE_USERNAME": "scopenet",
            "SCOPENET_KEYSTONE_PASSWORD": service_password,
            "SCOPENET_KEYSTONE_REGION_NAME": REGION,
        }
        if token_cache_time is not None:
            api_env["SCOPENET_KEYSTONE_TOKEN_CACHE_TIME"] = str(token_cache_time)
        member = password_env(ks.url, username="demo", password=member_password, project="demo")
        yield LocalKeystone(keystone=ks, api_env=api_env, member_env=member)


def issue_token(env: Mapping[str, str]) -> tuple[str, str]:
    """(token, project id) for the password credentials in ``env`` (``OS_*``)."""
    conn = connect(env=env)
    try:
        return str(conn.auth_token), str(conn.current_project_id)
    finally:
        conn.close()


@click.group("keystone")
def group() -> None:
    """Keystone: put scopenet in a cloud's service catalog, as Neutron is."""


@group.command("register")
@click.option("--url", required=True, help="scopenet's public endpoint, e.g. https://network.example.org:9696")
@click.option("--internal-url", default=None, help="the internal endpoint (default: --url)")
@click.option("--admin-url", default=None, help="the admin endpoint (default: --internal-url)")
@click.option("--region", default="RegionOne", show_default=True)
@click.option("--name", default="scopenet", show_default=True, help="the service's name (its type is network)")
@click.option("--service-user", default=None, help="also make this user (service role on --service-project), the API's")
@click.option("--service-password", envvar="SCOPENET_KEYSTONE_PASSWORD", default=None, help="the service user's")
@click.option("--service-project", default="service", show_default=True)
@click.option("--os-cloud", envvar="OS_CLOUD", default=None, help="a cloud of clouds.yaml (else the OS_* variables)")
def keystone_register(
    url: str,
    internal_url: str | None,
    admin_url: str | None,
    region: str,
    name: str,
    service_user: str | None,
    service_password: str | None,
    service_project: str,
    os_cloud: str | None,
) -> None:
    """Register scopenet as the network service (endpoints in --region), as an admin of the cloud
    (OS_* variables or --os-cloud). Run it again to move the endpoints or reset the password."""
    from keystoneauth1 import exceptions as auth_errors
    from openstack import exceptions as sdk_errors

    try:
        conn = connect(cloud=os_cloud)
        try:
            lines = register(
                conn,
                url=url,
                internal_url=internal_url,
                admin_url=admin_url,
                region=region,
                name=name,
                service_user=service_user,
                service_password=service_password,
                service_project=service_project,
            )
        finally:
            conn.close()
    except (sdk_errors.SDKException, auth_errors.ClientException, ValueError) as exc:
        raise click.ClickException(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    click.echo("\n".join(lines))
    if service_user:
        click.echo(
            f"the API: SCOPENET_AUTH=keystone SCOPENET_KEYSTONE_AUTH_URL=<identity endpoint> "
            f"SCOPENET_KEYSTONE_USERNAME={service_user} SCOPENET_KEYSTONE_PASSWORD=<its password> "
            f"SCOPENET_KEYSTONE_PROJECT_NAME={service_project}"
        )
