"""uvicorn as the server of `naftiko serve`, chosen with `NAFTIKO_HTTP=uvicorn`.

naftiko's own server (`adapters/http1.py`) is the default; uvicorn stays selectable for one
release, for anyone who meets a difference. It is imported only when chosen.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from collections.abc import Iterator

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .edges import ABORT_EXTENSION
from .reload import Slot


class UvicornServer(uvicorn.Server):
    """uvicorn, minus its own signal handling: `serve` stops every server together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _OneSendTransport:
    """A transport whose writes of one event-loop turn leave in one send() call.

    uvicorn writes a response's head and body separately: two system calls and, on loopback,
    two packets per answer. Holding writes until the turn ends joins them (bench/README.md).
    """

    __slots__ = ("_transport", "_loop", "_held")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._held: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self._held is not None:
            self._held.append(data)
        else:
            self._held = [data]
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        held, self._held = self._held, None
        if held and not self._transport.is_closing():
            if len(held) == 1:
                self._transport.write(held[0])
            else:
                self._transport.writelines(held)  # one writev: a large body is not copied to be joined

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _Protocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing each answer with one system call.

    Each request's scope carries the `naftiko.abort` extension: a streamed answer whose upstream
    broke mid-body closes the connection through it, so uvicorn sees a disconnect rather than an
    unfinished response (which it would log as an error of its own).
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_OneSendTransport(transport))  # type: ignore[arg-type]
        self._slot: Slot = self.config.loaded_app
        self._extensions = {ABORT_EXTENSION: {"close": self.transport.close}}

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.app = self._slot.app  # the app served now: a reload swaps it between two requests
        self.scope["extensions"] = self._extensions  # type: ignore[typeddict-item]

    def on_response_complete(self) -> None:
        self.transport.flush()  # type: ignore[attr-defined]  # the whole answer is written: send it now
        super().on_response_complete()


def uvicorn_server(slot: Slot) -> UvicornServer:
    """A uvicorn server of `slot`'s app, with the protocol above and no logging or lifespan of its own."""
    config = uvicorn.Config(
        slot,
        http=_Protocol,
        interface="asgi3",
        lifespan="off",
        log_level="warning",
        access_log=False,
        log_config=None,
        proxy_headers=False,
        server_header=False,
    )
    return UvicornServer(config)
