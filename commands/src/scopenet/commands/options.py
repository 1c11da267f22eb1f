"""What the ``scopenet`` commands share: the ``--state-dir`` option, settings read from the
environment, and an admin connection to the NATS of a running stack (``dlq``, ``explain``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import click

from scopenet.infra.embedded import running_stack
from scopenet.runtime.settings import InvalidSettings, Settings, load

_S = TypeVar("_S", bound=Settings)

state_dir_option = click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=None,
    envvar="SCOPENET_STATE_DIR",
    help="where embedded Postgres/NATS keep their data",
)


class OperatorError(Exception):
    """Something the operator has to fix: one line."""


def load_settings(cls: type[_S], state_dir: Path | None) -> _S:
    """``cls`` from the environment (``--state-dir`` wins); a bad variable is one line naming it."""
    try:
        base = load(cls)
    except InvalidSettings as exc:
        raise click.ClickException(str(exc)) from None
    return base.model_copy(update={"state_dir": state_dir}) if state_dir else base


def settings(state_dir: Path | None) -> Settings:
    """The shared settings, for commands that only find or start the infrastructure."""
    return load_settings(Settings, state_dir)


def stack_nats_url(state_dir: Path | None) -> str:
    """``SCOPENET_NATS_URL``, else the NATS a running ``scopenet up`` recorded in the state dir."""
    found = settings(state_dir)
    url = found.nats_url or (running_stack(found.state_dir) or {}).get("nats_url")
    if not url:
        raise click.ClickException(
            f"no running `scopenet up` in {found.state_dir} (use --state-dir or SCOPENET_STATE_DIR) "
            "and SCOPENET_NATS_URL is not set"
        )
    return url


async def connect(url: str, *, name: str) -> Any:
    """A NATS connection that fails at once, with one line, when the server cannot be reached."""
    import nats  # here: `scopenet --help` does not pay for the NATS client

    from scopenet.bus.natsauth import inbox_prefix

    try:
        return await nats.connect(
            url, name=name, max_reconnect_attempts=0, connect_timeout=5, inbox_prefix=inbox_prefix(url)
        )
    except Exception as exc:
        raise OperatorError(
            f"scopenet: cannot reach NATS at {url.rpartition('@')[2]}: {exc or type(exc).__name__}"
        ) from None
