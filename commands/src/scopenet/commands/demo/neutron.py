"""A small Neutron v2.0 client over HTTP: the demo drives scopenet exactly as the CLI would."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp


class ApiError(Exception):
    def __init__(self, status: int, type_: str, message: str) -> None:
        super().__init__(f"HTTP {status} {type_}: {message}")
        self.status = status
        self.type = type_
        self.message = message


class Neutron:
    def __init__(self, session: aiohttp.ClientSession, endpoint: str, token: str) -> None:
        self.session = session
        self.endpoint = endpoint.rstrip("/")
        self.token = token

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        url = f"{self.endpoint}/v2.0/{path.lstrip('/')}"
        async with self.session.request(method, url, json=body, headers={"X-Auth-Token": self.token}) as resp:
            if resp.status == 204:
                return None
            data = await resp.json(content_type=None)
            if resp.status >= 400:
                err = (data or {}).get("NeutronError", {})
                raise ApiError(resp.status, err.get("type", "?"), err.get("message", str(data)))
            return data

    async def create(self, collection: str, key: str, **attrs: Any) -> dict[str, Any]:
        return (await self.call("POST", collection, {key: attrs}))[key]  # type: ignore[no-any-return]

    async def show(self, collection: str, key: str, id_: str) -> dict[str, Any]:
        return (await self.call("GET", f"{collection}/{id_}"))[key]  # type: ignore[no-any-return]

    async def update(self, collection: str, key: str, id_: str, **attrs: Any) -> dict[str, Any]:
        return (await self.call("PUT", f"{collection}/{id_}", {key: attrs}))[key]  # type: ignore[no-any-return]

    async def action(self, collection: str, id_: str, action: str, body: dict[str, Any]) -> Any:
        return await self.call("PUT", f"{collection}/{id_}/{action}", body)


async def wait_until_serving(endpoint: str, token: str, *, timeout: float = 90) -> None:
    """Until the API answers and the services behind it do too (they start in parallel)."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        for path in ("address-scopes", "networks", "routers"):
            while True:
                try:
                    async with session.get(
                        f"{endpoint}/v2.0/{path}",
                        headers={"X-Auth-Token": token},
                        timeout=aiohttp.ClientTimeout(total=3),
                    ) as resp:
                        if resp.status == 200:
                            break
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"scopenet at {endpoint} was not serving {path} within {timeout:.0f}s")
                await asyncio.sleep(0.2)
