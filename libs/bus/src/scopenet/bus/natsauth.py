"""NATS users for scopenet: passwords kept in a credentials file, the server's ``authorization``
block rendered from the permission table (``scopenet.contracts.permissions``), URLs per user.

Credentials travel in the URL (``nats://<user>:<password>@host:port``), so ``SCOPENET_NATS_URL``
stays the one setting a process needs; the client derives its inbox prefix from the user
(``scopenet.runtime.connect_nats``). The credentials file (JSON ``{user: password}``, mode 0600)
is the source of the passwords: the embedded server keeps one in its data directory, an operator
keeps one beside their server's configuration (``scopenet nats config``).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from scopenet.contracts import permissions as perm

CREDENTIALS_FILE = "credentials.json"
AUTH_FILE = "auth.conf"


def new_password() -> str:
    return secrets.token_hex(24)  # URL-safe: it goes into SCOPENET_NATS_URL as is


class Credentials:
    """``{user: password}`` in a JSON file only its owner can read; users are added, never changed."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ValueError(f"{self.path}: expected a JSON object of user -> password")
        return {str(k): v for k, v in data.items()}

    def ensure(self, users: Iterable[str]) -> dict[str, str]:
        """Every user of ``users`` has a password (new ones are generated and saved); returns all."""
        known = self.load()
        missing = [perm.valid_user(u) for u in users if u not in known]
        for user in missing:
            perm.for_user(user)  # refuse a user the table has no permissions for
            known[user] = new_password()
        if missing or not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(known, out, indent=2, sort_keys=True)
            os.replace(tmp, self.path)  # all or nothing: a crash never leaves half a file
        return known


def default_users() -> list[str]:
    return [perm.ADMIN, *perm.SERVICES]


def _q(text: str) -> str:
    """A quoted string of the NATS configuration format (JSON escaping is accepted; ``$`` inside
    quotes is literal, so ``$JS.API.>`` is not read as a variable)."""
    return json.dumps(text)


def _list(items: Iterable[str], indent: str) -> str:
    return "[\n" + "".join(f"{indent}  {_q(i)}\n" for i in items) + f"{indent}]"


def render_user(user: str, password: str, p: perm.Permissions, indent: str = "    ") -> str:
    inner = indent + "  "
    lines = [
        f"{indent}{{",
        f"{inner}user: {_q(user)}",
        f"{inner}password: {_q(password)}",
        f"{inner}permissions: {{",
        f"{inner}  publish: {{ allow: {_list(p.publish, inner + '  ')} }}",
        f"{inner}  subscribe: {{ allow: {_list(p.subscribe, inner + '  ')} }}",
    ]
    if p.allow_responses:
        lines.append(f"{inner}  allow_responses: true")
    lines += [f"{inner}}}", f"{indent}}}"]
    return "\n".join(lines)


def render_authorization(passwords: Mapping[str, str]) -> str:
    """The ``authorization { users: [...] }`` block for ``passwords`` (every user must be in the
    permission table). Include it in a nats-server configuration (``include auth.conf``)."""
    users = "\n".join(render_user(u, pw, perm.for_user(u)) for u, pw in sorted(passwords.items()))
    return (
        "# scopenet's NATS users, rendered from libs/contracts/permissions.py (scopenet nats config):\n"
        "# regenerate rather than edit. A password may be replaced by its bcrypt hash.\n"
        f"authorization {{\n  users: [\n{users}\n  ]\n}}\n"
    )


def user_url(url: str, user: str, password: str) -> str:
    """``url`` with ``user``'s credentials (any credentials it had are replaced)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"))


def url_user(url: str) -> str | None:
    """The user a NATS URL carries, if any."""
    name = urlsplit(url).username
    return unquote(name) if name else None


def inbox_prefix(url: str) -> str:
    """The inbox prefix for a connection to ``url``: its user's own (the only inbox its permissions
    let it subscribe to), or NATS's default when the URL carries no user."""
    user = url_user(url)
    return perm.inbox(user) if user else "_INBOX"
