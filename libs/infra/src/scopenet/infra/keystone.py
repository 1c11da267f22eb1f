"""A Keystone of our own on loopback, for tests, ``scopenet up --keystone`` and the demo.

Keystone comes from PyPI but lives in a virtualenv of its own (``.venv-keystone`` beside the
workspace's ``.venv``, made by ``make install`` from ``deploy/keystone/requirements.txt``): its
pins of SQLAlchemy, cryptography and the oslo libraries are not the workspace's, and the API only
needs keystonemiddleware, which the workspace has.

Each data directory is one Keystone: a SQLite database, fernet and credential keys, its config and
its admin's password (made on first start, mode 0600, kept across restarts). Every start runs
``keystone-manage db_sync`` and ``bootstrap`` (both idempotent; bootstrap also moves the identity
endpoints to this start's port) and then serves Keystone's WSGI application under waitress (a
pure-Python WSGI server; no uWSGI, no Apache) on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scopenet.contracts.errors import TransientError
from scopenet.infra import processes

#: The region ``bootstrap`` puts the identity endpoints in; ``scopenet keystone register`` uses it too.
REGION = "RegionOne"
#: Where the venv is when ``SCOPENET_KEYSTONE_VENV`` does not say: beside this interpreter's venv.
VENV_NAME = ".venv-keystone"


class KeystoneUnavailable(RuntimeError):
    """Keystone's virtualenv is missing or Keystone did not start (the message says which and how)."""


@dataclass(frozen=True)
class Keystone:
    """A running Keystone and its bootstrap admin (project ``admin`` in domain ``Default``)."""

    url: str
    """The identity endpoint, ``http://127.0.0.1:<port>/v3`` (``OS_AUTH_URL``)."""
    admin_password: str
    data_dir: Path

    def admin_env(self) -> dict[str, str]:
        """``OS_*`` variables of the admin, as the ``openstack`` CLI and openstacksdk read them."""
        return password_env(self.url, username="admin", password=self.admin_password, project="admin")


def password_env(url: str, *, username: str, password: str, project: str) -> dict[str, str]:
    """The ``OS_*`` variables of password credentials in the ``Default`` domain."""
    return {
        "OS_AUTH_URL": url,
        "OS_AUTH_TYPE": "password",
        "OS_IDENTITY_API_VERSION": "3",
        "OS_USERNAME": username,
        "OS_PASSWORD": password,
        "OS_PROJECT_NAME": project,
        "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_DOMAIN_NAME": "Default",
        "OS_REGION_NAME": REGION,
        "OS_INTERFACE": "public",
    }


def keystone_venv() -> Path:
    """``SCOPENET_KEYSTONE_VENV``, else ``.venv-keystone`` next to the running interpreter's venv."""
    configured = os.environ.get("SCOPENET_KEYSTONE_VENV")
    return Path(configured) if configured else Path(sys.prefix).parent / VENV_NAME


def _binary(venv: Path, name: str) -> str:
    path = venv / "bin" / name
    if not path.exists():
        raise KeystoneUnavailable(
            f"{path} not found: Keystone's virtualenv is made by `make install` "
            f"(or set SCOPENET_KEYSTONE_VENV to a venv with keystone and waitress)"
        )
    return str(path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: Run in Keystone's venv: its WSGI application under waitress. Keystone reads its options from
#: ``sys.argv`` (oslo.config), so the program takes its own arguments off before Keystone looks.
_SERVE = """
import sys
host, port, threads = sys.argv[1:4]
del sys.argv[1:]
import waitress
from keystone.server import wsgi
waitress.serve(wsgi.initialize_public_application(), host=host, port=int(port), threads=int(threads), ident="keystone")
"""


def _config(data_dir: Path, *, token_expiration: int, hash_rounds: int | None) -> str:
    rounds = f"\n[identity]\npassword_hash_rounds = {hash_rounds}\n" if hash_rounds else ""
    return f"""[DEFAULT]
use_stderr = true
{rounds}
[database]
connection = sqlite:///{data_dir / "keystone.db"}

[token]
provider = fernet
expiration = {token_expiration}

[fernet_tokens]
key_repository = {data_dir / "fernet-keys"}

[fernet_receipts]
key_repository = {data_dir / "fernet-keys"}

[credential]
key_repository = {data_dir / "credential-keys"}
"""


def kept_secret(path: Path) -> str:
    """A password kept in ``path`` (mode 0600), made on first use: the same one on every start."""
    with contextlib.suppress(FileNotFoundError):
        return path.read_text().strip()
    password = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(password)
    return password


def _manage(venv: Path, conf: Path, log: Path, *args: str, env: dict[str, str] | None = None) -> None:
    argv = [_binary(venv, "keystone-manage"), "--config-file", str(conf), *args]
    with open(log, "ab") as out:
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env, check=False, timeout=300)
    if done.returncode != 0:
        raise KeystoneUnavailable(f"keystone-manage {args[0]} exited with {done.returncode}; see {log}")


def _prepare(venv: Path, data_dir: Path, conf: Path, log: Path, *, url: str, password: str) -> None:
    """Database, keys and the bootstrap admin. Each step is skipped when a marker says it is done
    for this Keystone release (db_sync) and this URL (bootstrap): a warm start only serves."""
    import getpass
    import grp

    user, group = getpass.getuser(), grp.getgrgid(os.getgid()).gr_name
    release = (venv / "pyvenv.cfg").stat().st_mtime_ns  # a reinstalled venv may bring a new schema
    synced = data_dir / "db_sync.done"
    if not synced.exists() or synced.read_text() != str(release):
        _manage(venv, conf, log, "db_sync")
        synced.write_text(str(release))
    if not (data_dir / "fernet-keys" / "0").exists():
        _manage(venv, conf, log, "fernet_setup", "--keystone-user", user, "--keystone-group", group)
    if not (data_dir / "credential-keys" / "0").exists():
        _manage(venv, conf, log, "credential_setup", "--keystone-user", user, "--keystone-group", group)
    urls = ["--bootstrap-public-url", url, "--bootstrap-internal-url", url, "--bootstrap-admin-url", url]
    # The password goes through the environment, not argv (which every user of the machine can read).
    env = {**os.environ, "OS_BOOTSTRAP_PASSWORD": password}
    booted = data_dir / "bootstrap.done"
    if not booted.exists() or booted.read_text() != url:
        _manage(venv, conf, log, "bootstrap", "--bootstrap-region-id", REGION, *urls, env=env)
        booted.write_text(url)


def _wait_serving(url: str, proc: subprocess.Popen[bytes], log: Path, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise KeystoneUnavailable(f"keystone exited with {proc.returncode}; see {log}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:
            if resp.status == 200:
                return
        time.sleep(0.1)
    raise TransientError(f"keystone did not answer on {url} within {timeout}s; see {log}")


@contextlib.contextmanager
def keystone_server(
    data_dir: Path,
    *,
    port: int | None = None,
    token_expiration: int = 3600,
    threads: int = 8,
    password_hash_rounds: int | None = None,
) -> Iterator[Keystone]:
    """Run Keystone with its state in ``data_dir`` on 127.0.0.1 (a free port unless ``port``);
    yields where it is and its admin; stops it on exit. ``token_expiration``: seconds a token lives.
    ``password_hash_rounds``: bcrypt's cost (Keystone's 12 unless given); throwaway Keystones (tests,
    the demo, benchmarks) take 4, since every password login pays it."""
    venv = keystone_venv()
    python = _binary(venv, "python")
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}/v3"
    log = data_dir / "keystone.log"
    conf = data_dir / "keystone.conf"
    conf.write_text(_config(data_dir, token_expiration=token_expiration, hash_rounds=password_hash_rounds))
    password = kept_secret(data_dir / "admin-password")
    _prepare(venv, data_dir, conf, log, url=url, password=password)
    argv = [python, "-c", _SERVE, "127.0.0.1", str(port), str(threads)]
    env = {**os.environ, "OS_KEYSTONE_CONFIG_FILES": str(conf)}
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        _wait_serving(url, proc, log, timeout=60)
        yield Keystone(url=url, admin_password=password, data_dir=data_dir)
    finally:
        processes.stop([proc], timeout=10)
