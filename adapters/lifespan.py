"""Tie an adapter's ASGI lifespan to the runtime it serves."""

from __future__ import annotations

from typing import Any

from ..engine import Runtime


class RuntimeLifespan:
    """Wraps an ASGI app so that lifespan startup/shutdown start and stop the runtime.

    Runtime starts are counted, so several adapters of one runtime can each carry this.
    """

    def __init__(self, app: Any, runtime: Runtime) -> None:
        self.app, self.runtime = app, runtime

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.runtime.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.runtime.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
