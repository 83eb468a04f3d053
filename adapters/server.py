"""Serve every exposes block of a runtime, each on its own port, in one event loop.

Sockets are bound before anything starts, so a busy port is a clear error rather than a
half-started process, and port 0 picks a free one (the chosen URL is reported).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
from dataclasses import dataclass, replace
from typing import Any, Protocol
from collections.abc import Callable, Collection, Mapping, Sequence

from .apps import block_app
from .http1 import Http1Server, Limits as HttpLimits
from .reload import DEFAULT_DRAIN, ReloadOptions, Reloader, Slot, drain
from ..engine import (
    CapabilityError,
    ControlExposes,
    Exposes,
    Location,
    McpExposes,
    NaftikoError,
    Problem,
    RestExposes,
    Runtime,
    SkillExposes,
    gc_paused,
)

log = logging.getLogger("naftiko")
DEFAULT_HOST = "127.0.0.1"
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")


@dataclass(frozen=True, slots=True)
class Listener:
    """One served exposes block and where it listens."""

    exposes: Exposes
    url: str
    summary: str


def bind(host: str, port: int, what: str, reuse_port: bool = False, listen: bool = True) -> socket.socket:
    """A listening socket, or a NaftikoError that says which port and what it was for.

    `reuse_port` (SO_REUSEPORT) lets sockets of this user share the port, each with a queue of its
    own: one per worker (see workers.py). `listen=False` only binds (a check that the port is free).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # so asyncio sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise NaftikoError(f"cannot listen on {host}:{port} for {what}: {exc.strerror or exc}") from None
    if listen:
        sock.listen(2048)
    sock.setblocking(False)
    return sock


Served = RestExposes | McpExposes | SkillExposes | ControlExposes
"""The exposes blocks this runtime listens for (an OtherExposes is only warned about)."""


def _servable(runtime: Runtime, quiet: bool = False) -> list[Served]:
    servable: list[Served] = []
    for exposes in runtime.exposes:
        if isinstance(exposes, (RestExposes, SkillExposes, ControlExposes)) or (
            isinstance(exposes, McpExposes) and exposes.transport == "http"
        ):
            servable.append(exposes)
        elif not quiet:
            log.warning(
                "exposes '%s' (type %s) is not served: this runtime does not serve it yet",
                exposes.namespace or "-",
                exposes.type if not isinstance(exposes, McpExposes) else "mcp stdio",
            )
    return servable


def port_clashes(runtime: Runtime, host: str | None = None, ports: Mapping[str, int] | None = None) -> list[Problem]:
    """Blocks that would listen on one address and port: `validate` reports what `serve` would meet."""
    taken: dict[tuple[str, int], Served] = {}
    problems: list[Problem] = []
    for exposes in _servable(runtime, quiet=True):
        port = (ports or {}).get(exposes.namespace, exposes.port or 0)
        key = (host or exposes.address or DEFAULT_HOST, port)
        first = taken.setdefault(key, exposes) if port else exposes
        if first is not exposes:
            problems.append(
                Problem(
                    exposes.where,
                    f"exposes '{exposes.namespace}' listens on {key[0]}:{port}, as"
                    f" '{first.namespace}' does ({first.where}); give one of them another port"
                    f" (or --port {exposes.namespace}=PORT)",
                )
            )
    return problems


def _summary(exposes: Served, app: Any) -> str:
    if isinstance(exposes, ControlExposes):
        return f"CONTROL {exposes.namespace}: {', '.join(app.routes) or 'no endpoints'}"
    if isinstance(exposes, RestExposes):
        return f"REST {exposes.namespace}: {len(app.routes)} routes"
    if isinstance(exposes, SkillExposes):
        return f"SKILL {exposes.namespace}: {len(exposes.skills)} skills"
    return f"MCP {exposes.namespace}: {len(exposes.tools)} tools"


def _mcp_options(
    bind_host: str, allowed_hosts: list[str] | None, allowed_origins: list[str] | None, session_secret: bytes | None
) -> dict[str, Any]:
    """DNS-rebinding defaults: local Host names, plus the address bound when it is a specific one."""
    options: dict[str, Any] = {"allowed_origins": allowed_origins}
    if session_secret is not None:
        options["session_secret"] = session_secret
    if allowed_hosts is not None:
        options["allowed_hosts"] = allowed_hosts
    elif bind_host not in LOCAL_HOSTS:
        if bind_host in ("0.0.0.0", "::"):
            log.warning(
                "MCP on %s accepts only localhost Host headers; add --allow-host NAME for the names clients use",
                bind_host,
            )
        else:
            options["allowed_hosts"] = [*LOCAL_HOSTS, f"[{bind_host}]" if ":" in bind_host else bind_host]
    return options


@dataclass(frozen=True, slots=True)
class EdgeOptions:
    """How the served blocks meet their callers, beyond what the capability files say."""

    allowed_hosts: list[str] | None = None  # MCP Host allow-list (DNS rebinding)
    allowed_origins: list[str] | None = None  # MCP Origin allow-list
    cors_origins: list[str] | None = None  # browser origins every block answers (CORS)
    session_secret: bytes | None = None  # signs handshake-era MCP session ids, shared by instances
    access_log: bool | None = None  # a JSON line per request (--log-format json); None: NAFTIKO_LOG_FORMAT
    http: str = "naftiko"  # the HTTP server: naftiko's own (http1.py) or "uvicorn" (NAFTIKO_HTTP)
    http_limits: HttpLimits | None = None  # what that server accepts (NAFTIKO_HTTP_*); None: the defaults

    def __post_init__(self) -> None:
        if self.http not in ("naftiko", "uvicorn"):
            raise ValueError(f"EdgeOptions.http is 'naftiko' or 'uvicorn', not {self.http!r}")


def _options(exposes: Exposes, host: str | None, edge: EdgeOptions) -> dict[str, Any]:
    if isinstance(exposes, ControlExposes):
        return {}  # probes and scrapers, not pages: no CORS (and /traces may hold request data)
    options: dict[str, Any] = {"cors_origins": edge.cors_origins}
    if isinstance(exposes, McpExposes):
        # `Cors` marks the requests it allows and the Guard lets those through, so the CORS origins
        # need no place in the Origin allow-list, whose local-origin default stays as it is.
        options.update(
            _mcp_options(
                host or exposes.address or DEFAULT_HOST, edge.allowed_hosts, edge.allowed_origins, edge.session_secret
            )
        )
    return options


def _control_block(runtime: Runtime, port: int | None, ports: dict[str, int]) -> list[ControlExposes]:
    """`--control-port`: the declared control block's port, or a block of its own when none is declared."""
    if port is None:
        return []
    if any(isinstance(e, ControlExposes) for e in runtime.exposes):
        ports["control"] = port
        return []
    return [ControlExposes(port=port, where=Location("--control-port"), info=True)]


def block_key(exposes: Exposes) -> str:
    """The name a block's listener goes by between processes (workers) and reloads."""
    return exposes.namespace or exposes.type


@dataclass(frozen=True, slots=True)
class Plan:
    """Which blocks of a runtime listen where, checked before anything is bound or built.

    `served` keeps only the blocks of those keys (a worker serves the sockets it was handed).
    """

    host: str | None
    ports: dict[str, int]
    blocks: list[Served]
    added: list[ControlExposes]
    layout: list[tuple[str, str, int]]  # where every block asks to listen, served here or not

    @classmethod
    def of(
        cls,
        runtime: Runtime,
        host: str | None = None,
        ports: Mapping[str, int] | None = None,
        control_port: int | None = None,
        served: Collection[str] | None = None,
    ) -> Plan:
        ports = dict(ports or {})
        added = _control_block(runtime, control_port, ports)
        unknown = [ns for ns in ports if ns not in {e.namespace for e in runtime.exposes}]
        if unknown:
            raise CapabilityError.at(Location("--port"), f"no exposes namespace {', '.join(unknown)}")
        clashes = port_clashes(runtime, host, ports)
        if clashes:
            raise CapabilityError(clashes)
        blocks: list[Served] = [*_servable(runtime, quiet=served is not None), *added]
        if not any(not isinstance(e, ControlExposes) for e in blocks):
            raise NaftikoError("nothing to serve: no REST or HTTP MCP exposes block in the loaded files")
        layout = [
            (block_key(e), host or e.address or DEFAULT_HOST, ports.get(e.namespace, e.port or 0)) for e in blocks
        ]
        if served is not None:
            blocks = [e for e in blocks if block_key(e) in served]
        return cls(host, ports, blocks, added, layout)

    def same_listeners(self, new: Plan) -> None:
        """A reload may change anything but where the blocks listen (the sockets are bound once)."""
        if new.layout != self.layout:
            raise NaftikoError(
                f"reload: the new files listen on {_shown(new.layout)}, the running ones on {_shown(self.layout)};"
                " restart to add, remove or move listeners"
            )

    def bind_host(self, exposes: Exposes) -> str:
        return self.host or exposes.address or DEFAULT_HOST

    def port(self, exposes: Exposes) -> int:
        return self.ports.get(exposes.namespace, exposes.port or 0)

    def build(self, runtime: Runtime, edge: EdgeOptions) -> list[Any]:
        """The apps of the blocks (a control block's observer attached to the runtime first)."""
        from .control import observe

        observe(runtime, self.added, access_log=edge.access_log)  # before the adapters: they read it once
        with gc_paused():
            return [block_app(runtime, e, **_options(e, self.host, edge)) for e in self.blocks]

    def bind(self) -> list[socket.socket]:
        """A listening socket per block, all or none."""
        sockets: list[socket.socket] = []
        try:
            for exposes in self.blocks:
                sockets.append(bind(self.bind_host(exposes), self.port(exposes), f"'{exposes.namespace}'"))
        except BaseException:
            for sock in sockets:
                sock.close()
            raise
        return sockets

    def listeners(self, apps: Sequence[Any], sockets: Sequence[socket.socket]) -> list[Listener]:
        listeners: list[Listener] = []
        for exposes, app, sock in zip(self.blocks, apps, sockets, strict=True):
            bind_host = self.bind_host(exposes)
            shown = f"[{bind_host}]" if ":" in bind_host else bind_host
            path = "/mcp" if isinstance(exposes, McpExposes) else ""
            url = f"http://{shown}:{sock.getsockname()[1]}{path}"
            listeners.append(Listener(exposes, url, _summary(exposes, app)))
        return listeners


class HttpServer(Protocol):
    """What `serve` needs of the server of one port: naftiko's own (http1.py) or uvicorn's."""

    started: bool
    should_exit: bool

    @property
    def server_state(self) -> Any: ...  # its `tasks`: the requests in flight (the reload drain)

    async def serve(self, sockets: list[socket.socket]) -> None: ...


def _watch(listeners: list[Listener], apps: list[Any], servers: list[HttpServer], sockets: list[socket.socket]) -> None:
    """Tell each control block which listeners its readiness reports on."""
    from .control.app import AdapterState

    states = [
        AdapterState(listener.exposes.type, listener.exposes.namespace, sock.getsockname()[1], _listening(server))
        for listener, server, sock in zip(listeners, servers, sockets, strict=True)
    ]
    for listener, app in zip(listeners, apps, strict=True):
        if isinstance(listener.exposes, ControlExposes):
            app.watch(states)


def _listening(server: HttpServer) -> Callable[[], bool]:
    """Whether a server accepts connections: started, and not shutting down (readiness drains first)."""
    return lambda: bool(server.started and not server.should_exit)


def _server(slot: Slot, edge: EdgeOptions, drain: float) -> HttpServer:
    """The server of one port; requests still running `drain` seconds after a stop are cut."""
    if edge.http == "uvicorn":
        from .uvicorn_server import uvicorn_server

        return uvicorn_server(slot)
    limits = edge.http_limits or HttpLimits()
    return Http1Server(slot, replace(limits, shutdown_timeout=max(drain, 0.001)))


class _Serving:
    """The bound sockets, their servers, and the runtime whose apps they serve now.

    `replace` swaps in the apps of another runtime (a reload) on the same sockets: requests that
    arrive afterwards go to them, those in flight finish on the old runtime, which is stopped once
    they are done (or after `drain` seconds).
    """

    def __init__(
        self,
        runtime: Runtime,
        plan: Plan,
        edge: EdgeOptions,
        control_port: int | None,
        sockets: list[socket.socket],
        drain: float = DEFAULT_DRAIN,
    ) -> None:
        self.runtime, self.plan, self.edge, self.control_port, self.sockets = runtime, plan, edge, control_port, sockets
        self.drain = drain
        apps = plan.build(runtime, edge)
        self.slots = [Slot(app) for app in apps]
        self.servers = [_server(slot, edge, drain) for slot in self.slots]
        self.listeners = plan.listeners(apps, sockets)
        _watch(self.listeners, apps, self.servers, sockets)  # before any starts: readiness is live from the first probe
        self.retiring: set[asyncio.Task[None]] = set()

    async def replace(self, runtime: Runtime) -> None:
        """Serve `runtime` from now on; a NaftikoError (and the old runtime goes on) if it cannot be."""
        served = {block_key(e) for e in self.plan.blocks}
        plan = Plan.of(runtime, self.plan.host, self.plan.ports, self.control_port, served)
        self.plan.same_listeners(plan)
        apps = plan.build(runtime, self.edge)
        listeners = plan.listeners(apps, self.sockets)
        _watch(listeners, apps, self.servers, self.sockets)
        await runtime.start()
        in_flight: set[asyncio.Task[Any]] = set()
        for server in self.servers:
            in_flight |= server.server_state.tasks
        for slot, app in zip(self.slots, apps, strict=True):
            slot.app = app
        old, self.runtime, self.plan, self.listeners = self.runtime, runtime, plan, listeners
        log.info("reloaded: %s", "; ".join(listener.summary for listener in listeners))
        task = asyncio.create_task(self._retire(old, in_flight))
        self.retiring.add(task)
        task.add_done_callback(self.retiring.discard)

    async def _retire(self, old: Runtime, in_flight: set[asyncio.Task[Any]]) -> None:
        left = await drain(in_flight, self.drain)
        if left:
            log.warning(
                "%d request(s) still running %.0f s after a reload: their upstream calls are cut", left, self.drain
            )
        await old.stop()
        await close_observer(old)
        # The old runtime was frozen with everything loaded at start-up: let one collection free it.
        gc.unfreeze()
        gc.collect()
        gc.freeze()

    async def close(self) -> None:
        """After the servers stopped: the replaced runtimes and the current one, stopped."""
        await asyncio.gather(*self.retiring, return_exceptions=True)
        await self.runtime.stop()
        await close_observer(self.runtime)


async def close_observer(runtime: Runtime) -> None:
    """Flush what the runtime's observer still holds (spans queued for the collector) and let it go.

    In a thread: an exporter may wait for its collector (at most its OTEL_EXPORTER_OTLP_TIMEOUT)."""
    close = getattr(runtime.observer, "close", None)
    if close is not None:
        await asyncio.to_thread(close)


def _shown(layout: list[tuple[str, str, int]]) -> str:
    return ", ".join(f"{key} {host}:{port or 'any'}" for key, host, port in layout) or "nothing"


async def serve(
    runtime: Runtime,
    *,
    host: str | None = None,
    ports: Mapping[str, int] | None = None,
    edge: EdgeOptions | None = None,
    control_port: int | None = None,
    on_ready: Callable[[list[Listener]], None] | None = None,
    sockets: Mapping[str, socket.socket] | None = None,
    reload: ReloadOptions | None = None,
    announce: bool = True,
) -> None:
    """Run until SIGINT/SIGTERM (or cancellation), then stop everything cleanly.

    `control_port` serves the control block there: the declared one, or one with every endpoint
    (health, status, metrics, traces) when no file declares one. `sockets` (by block key) are
    listening sockets bound elsewhere (a worker's, from its supervisor): only their blocks are
    served. With `reload`, SIGHUP (and, with an interval, a change of the files) loads the files
    again and swaps them in when they load. `announce` logs each listener's URL.
    """
    edge = edge or EdgeOptions()
    plan = Plan.of(runtime, host, ports, control_port, None if sockets is None else set(sockets))
    if sockets is None:
        bound = plan.bind()
    else:
        bound = [sockets[block_key(e)] for e in plan.blocks]
    try:
        serving = _Serving(runtime, plan, edge, control_port, bound, reload.drain if reload else DEFAULT_DRAIN)
    except BaseException:
        for sock in bound:
            sock.close()
        raise
    await runtime.start()
    # What was loaded lives as long as the process: keep it out of every garbage collection, so
    # a collection's pause stays short however large the capability files are.
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = [signal.SIGINT, signal.SIGTERM]
    for sig in handled:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    reloader = Reloader(reload, serving.replace) if reload is not None else None
    if reloader is not None and hasattr(signal, "SIGHUP"):
        handled.append(signal.SIGHUP)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, reloader.request)
    servers = serving.servers
    tasks = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in zip(servers, bound, strict=True)]
    watcher = asyncio.create_task(reloader.run()) if reloader is not None else None
    try:
        while not all(server.started for server in servers):
            if any(task.done() for task in tasks):
                break
            await asyncio.sleep(0.001)  # the servers start within a turn or two: no 10 ms of start-up lost here
        if announce:
            for listener in serving.listeners:
                log.info("%s at %s", listener.summary, listener.url)
        if on_ready is not None:
            on_ready(serving.listeners)
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
    finally:
        if watcher is not None:
            watcher.cancel()
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        for sig in handled:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        if watcher is not None:
            await asyncio.gather(watcher, return_exceptions=True)
        await serving.close()
        log.info("stopped")
