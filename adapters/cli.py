"""The `naftiko` command: serve, validate, list and call capability files."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import sys
from typing import TYPE_CHECKING, Any
from collections.abc import Callable, Mapping, Sequence

from ..engine import (
    Capability,
    CapabilityError,
    ControlExposes,
    Limits,
    McpExposes,
    NaftikoError,
    RequestError,
    RestExposes,
    Runtime,
    SkillExposes,
    UnknownOperation,
    answer_for,
    base_uri_variable,
    load_capabilities,
    load_documents,
    describe_shared,
)

if TYPE_CHECKING:
    from .reload import ReloadOptions
    from .server import EdgeOptions, Listener
    from .workers import Handed

log = logging.getLogger("naftiko")


def _pairs(values: Sequence[str], flag: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise SystemExit(f"naftiko: {flag} expects NAME=VALUE; got '{value}'")
        pairs[name] = rest
    return pairs


def _ports(values: Sequence[str]) -> dict[str, int]:
    ports: dict[str, int] = {}
    for name, raw in _pairs(values, "--port").items():
        if not raw.isdigit() or int(raw) > 65535:
            raise SystemExit(f"naftiko: --port {name}= expects a port number from 0 to 65535; got '{raw}'")
        ports[name] = int(raw)
    return ports


def _runtime(args: argparse.Namespace) -> Runtime:
    limits = Limits.from_env(os.environ, _pairs(args.limit, "--limit"))
    return Runtime.load(*args.paths, base_uris=_pairs(args.base_uri, "--base-uri"), timeout=args.timeout, limits=limits)


def _run(main: Any) -> None:
    """Run a coroutine on uvloop where it is installed (measurably faster), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def _settle(*_: object) -> None:
    """Once everything is built, move it out of the cycle collector's way for good."""
    gc.freeze()
    gc.enable()


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import serve

    gc.disable()  # loading builds many small objects that are never garbage; see _settle
    count = _workers(args.workers, os.environ)
    worker = _handed(os.environ)
    if args.stdio is not None and (count > 1 or args.reload):
        raise SystemExit("naftiko: --stdio serves one client: it takes neither --workers nor --reload")
    runtime = _runtime(args)
    if args.stdio is not None:
        from .mcp.capability import serve_stdio

        _settle()
        _run(serve_stdio(runtime, args.stdio or None))
        return 0
    ports = _ports(args.port)
    edge = _edge(args, os.environ)
    control_port = _control_port(args.control_port, os.environ)
    grace = _seconds(args.grace, os.environ.get("NAFTIKO_GRACE"), "--grace", DEFAULT_GRACE)
    if worker is None and count > 1:
        return _supervise(args, runtime, count, ports, edge, control_port, grace)
    reload = _reload_options(args, grace, watch=worker is None)
    if worker is None:
        _run(
            serve(
                runtime,
                host=args.host,
                ports=ports,
                edge=edge,
                control_port=control_port,
                on_ready=_settle,
                reload=reload,
            )
        )
        return 0

    async def serve_worker() -> None:
        from .workers import watch_supervisor

        task = asyncio.current_task()
        assert task is not None

        def stop() -> None:
            task.cancel()  # serve stops everything on its way out

        ready = watch_supervisor(worker, stop)

        def on_ready(listeners: list[Listener]) -> None:
            ready(listeners)
            _settle()

        try:
            await serve(
                runtime,
                host=args.host,
                ports=ports,
                edge=edge,
                control_port=control_port,
                on_ready=on_ready,
                sockets=worker.sockets,
                reload=reload,
                announce=False,
            )
        except asyncio.CancelledError:
            pass

    _run(serve_worker())
    return 0


DEFAULT_GRACE = 10.0
"""Seconds requests in flight get to finish: after a reload (reload.DEFAULT_DRAIN), and when a worker is stopped."""


def _handed(environ: Mapping[str, str]) -> Handed | None:
    """What a supervisor handed this process when it runs as one of its workers (NAFTIKO_WORKER is set)."""
    if "NAFTIKO_WORKER" not in environ:
        return None
    from .workers import handed

    return handed(environ)


def _workers(flag: int | None, environ: Mapping[str, str]) -> int:
    """`--workers`, else NAFTIKO_WORKERS, else 1 (one process, no supervisor)."""
    raw = str(flag) if flag is not None else environ.get("NAFTIKO_WORKERS") or "1"
    if raw == "1":
        return 1  # one process: the supervisor's module (3 ms to import) is not needed
    from .workers import MAX_WORKERS

    if not raw.isdigit() or not 1 <= int(raw) <= MAX_WORKERS:
        raise SystemExit(f"naftiko: --workers expects a number from 1 to {MAX_WORKERS}; got '{raw}'")
    return int(raw)


def _seconds(flag: float | None, raw: str | None, name: str, default: float) -> float:
    if flag is not None:
        value = flag
    elif raw:
        try:
            value = float(raw)
        except ValueError:
            raise SystemExit(f"naftiko: {name} expects seconds; got '{raw}'") from None
    else:
        return default
    if not 0 <= value <= 3600:
        raise SystemExit(f"naftiko: {name} expects seconds from 0 to 3600; got {value:g}")
    return value


def _reload_options(args: argparse.Namespace, grace: float, watch: bool) -> ReloadOptions:
    """SIGHUP always reloads; `--reload` also watches the files (a worker leaves that to its supervisor)."""
    from .reload import DEFAULT_INTERVAL, ReloadOptions

    interval = (
        _seconds(args.reload_interval, None, "--reload-interval", DEFAULT_INTERVAL) if args.reload and watch else None
    )
    if interval is not None and interval < 0.05:
        raise SystemExit("naftiko: --reload-interval expects at least 0.05 seconds")
    return ReloadOptions(load=lambda: _runtime(args), paths=list(args.paths), interval=interval, drain=grace)


def _supervise(
    args: argparse.Namespace,
    runtime: Runtime,
    count: int,
    ports: dict[str, int],
    edge: EdgeOptions,
    control_port: int | None,
    grace: float,
) -> int:
    """The supervisor of `--workers N`: the files checked, the sockets bound and the workers run here."""
    from .server import Plan
    from .workers import supervise

    plan = Plan.of(runtime, args.host, ports, control_port)
    apps = plan.build(runtime, edge)  # what each worker will build: a block that cannot be built stops us here
    del runtime

    def check() -> None:
        plan.same_listeners(Plan.of(_runtime(args), args.host, ports, control_port))

    from .reload import DEFAULT_INTERVAL

    interval = _seconds(args.reload_interval, None, "--reload-interval", DEFAULT_INTERVAL)
    return supervise(
        args.argv,
        plan,
        apps,
        count,
        check=check,
        watch=list(args.paths) if args.reload else None,
        interval=interval,
        grace=grace,
    )


def _control_port(flag: str | None, environ: Mapping[str, str]) -> int | None:
    """`--control-port`, else NAFTIKO_CONTROL_PORT (the variable the reference's CLI reads too), else none."""
    raw = flag if flag is not None else environ.get("NAFTIKO_CONTROL_PORT")
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or int(raw) > 65535:
        raise SystemExit(f"naftiko: --control-port expects a port number from 0 to 65535; got '{raw}'")
    return int(raw)


def _log_format(flag: str | None, environ: Mapping[str, str]) -> str:
    """`--log-format`, else NAFTIKO_LOG_FORMAT, else text."""
    raw = (flag or environ.get("NAFTIKO_LOG_FORMAT") or "text").strip().lower()
    if raw not in ("text", "json"):
        raise SystemExit(f"naftiko: --log-format expects text or json; got '{raw}'")
    return raw


def _edge(args: argparse.Namespace, environ: Mapping[str, str]) -> EdgeOptions:
    """The edge options of `serve`: flags first, then NAFTIKO_CORS_ORIGINS and NAFTIKO_SESSION_SECRET."""
    from .server import EdgeOptions

    cors = args.cors_origin
    if cors is None and environ.get("NAFTIKO_CORS_ORIGINS"):
        cors = [o.strip() for o in environ["NAFTIKO_CORS_ORIGINS"].split(",") if o.strip()]
    secret = environ.get("NAFTIKO_SESSION_SECRET")
    return EdgeOptions(
        allowed_hosts=args.allow_host,
        allowed_origins=args.allow_origin,
        cors_origins=cors,
        session_secret=secret.encode() if secret else None,
        access_log=args.log_format == "json",
        **_http_server(environ),
    )


def _http_server(environ: Mapping[str, str]) -> dict[str, Any]:
    """NAFTIKO_HTTP (naftiko, or uvicorn for one release) and the NAFTIKO_HTTP_* limits of naftiko's server."""
    from .http1 import Limits

    http = (environ.get("NAFTIKO_HTTP") or "naftiko").strip().lower()
    if http not in ("naftiko", "uvicorn"):
        raise SystemExit(f"naftiko: NAFTIKO_HTTP expects naftiko or uvicorn; got '{http}'")
    try:
        return {"http": http, "http_limits": Limits.from_env(environ)}
    except ValueError as exc:
        raise SystemExit(f"naftiko: {exc}") from None


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        from .server import port_clashes

        capabilities, shared = load_documents(args.paths)
        clashes = port_clashes(Runtime(capabilities, resolve_environment=False))
        if clashes:
            raise CapabilityError(clashes)
    except CapabilityError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    for capability in capabilities:
        for warning in capability.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(f"ok: {capability.path}")
    for leaf in shared:  # checked as fully as a capability; served only through the capabilities importing it
        for warning in leaf.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(f"ok: {leaf.path}: {describe_shared(leaf)}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    """`naftiko convert FILE --to ikanos|naftiko`: alpha2 ⇄ Ikanos beta5 (engine/spec/convert.py)."""
    from ..engine import convert_file

    text = convert_file(args.file, args.to)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    return 0


def cmd_export_openapi(args: argparse.Namespace) -> int:
    """`naftiko export openapi FILE`: the OpenAPI 3.1 document of one REST exposes block (engine/openapi)."""
    from ..engine import export_openapi, rest_blocks

    capabilities = load_capabilities([args.file])
    blocks = [b for b in rest_blocks(capabilities) if args.namespace in (None, b.namespace)]
    if len(blocks) != 1:
        names = ", ".join(b.namespace for b in rest_blocks(capabilities)) or "none"
        raise RequestError(f"choose one REST exposes block with --namespace (the file has: {names})")
    text = json.dumps(export_openapi(Runtime(capabilities, resolve_environment=False), blocks[0]), indent=2)
    if args.output in (None, "-"):
        print(text)
    else:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    for capability in load_capabilities(args.paths):
        print(_describe(capability))
    return 0


def _describe(capability: Capability) -> str:
    lines = [f"{capability.path}" + (f"  ({capability.info.label})" if capability.info else "")]
    for consumes in capability.consumes:
        base = consumes.base_uri or f"<no baseUri: set {base_uri_variable(consumes.namespace)}>"
        lines.append(f"  consumes {consumes.namespace}  {base}")
        for resource in consumes.resources:
            for op in resource.operations:
                lines.append(f"    {consumes.namespace}.{op.name:<40} {op.method:<6} {resource.path}")
    for exposes in capability.exposes:
        if isinstance(exposes, RestExposes):
            lines.append(f"  exposes rest {exposes.namespace}  port {exposes.port}")
            for exposed in exposes.resources:  # not `resource`: that names a consumed one above
                for operation in exposed.operations:
                    target = operation.invocation.call or operation.invocation.ref or "steps"
                    lines.append(f"    {operation.method:<6} {exposed.path}  -> {target}")
        elif isinstance(exposes, McpExposes):
            where = f"port {exposes.port}" if exposes.transport == "http" else "stdio"
            lines.append(f"  exposes mcp {exposes.namespace}  {where}")
            for tool in exposes.tools:
                lines.append(f"    tool {tool.name:<40} -> {tool.invocation.call or tool.invocation.ref or 'steps'}")
        elif isinstance(exposes, SkillExposes):
            lines.append(f"  exposes skill {exposes.namespace}  port {exposes.port}")
            lines += [
                f"    skill {skill.name}: {', '.join(t.name for t in skill.tools) or 'no tools'}"
                for skill in exposes.skills
            ]
        elif isinstance(exposes, ControlExposes):
            from .control.app import endpoints

            lines.append(f"  exposes control  port {exposes.port}: {', '.join(endpoints(exposes)) or 'nothing'}")
        else:
            lines.append(f"  exposes {exposes.type} {exposes.namespace or ''} (not served yet)")
    return "\n".join(lines)


def _call_arguments(values: Sequence[str]) -> dict[str, Any]:
    """`name=text` gives a string; `name:=json` gives parsed JSON (as in HTTPie)."""
    params: dict[str, Any] = {}
    for value in values:
        if ":=" in value and value.index(":=") < value.find("=") + 1:
            name, raw = value.split(":=", 1)
            try:
                params[name] = json.loads(raw)
            except ValueError as exc:
                raise SystemExit(f"naftiko: {name}:= needs JSON ({exc})") from None
        elif "=" in value:
            name, text = value.split("=", 1)
            params[name] = text
        else:
            raise SystemExit(f"naftiko: arguments are name=value or name:=json; got '{value}'")
    return params


def cmd_call(args: argparse.Namespace) -> int:
    params = _call_arguments(args.arguments)
    runtime = _runtime(args)

    async def run() -> tuple[int, Any]:
        async with runtime:
            return await runtime.call(args.operation, params)

    status, body = asyncio.run(run())
    print(json.dumps(body, indent=2, ensure_ascii=False) if not isinstance(body, str) else body)
    if status >= 400:
        print(f"naftiko: upstream answered HTTP {status}", file=sys.stderr)
        return 1
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="naftiko", description="Run Naftiko capability files.")
    root.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    commands = root.add_subparsers(dest="command", required=True)

    def with_upstream(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--base-uri",
            action="append",
            default=[],
            metavar="NS=URL",
            help="base URI of a consumes namespace (or set NAFTIKO_BASE_URI_<NS>)",
        )
        p.add_argument(
            "--timeout",
            type=float,
            default=None,
            metavar="SECONDS",
            help="upstream timeout (default 30, or NAFTIKO_UPSTREAM_TIMEOUT)",
        )
        p.add_argument(
            "--limit",
            action="append",
            default=[],
            metavar="NAME=SIZE",
            help="a limit such as upstream-body=64M (or NAFTIKO_MAX_<NAME>); see the README",
        )

    serve = commands.add_parser("serve", help="serve every exposes block of the files")
    serve.add_argument("paths", nargs="+", metavar="PATH", help="capability file or folder")
    serve.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    serve.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=None,
        help="json: every log line a JSON object, and one access line per request (or NAFTIKO_LOG_FORMAT)",
    )
    serve.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="NS=PORT",
        help="port of the exposes block NS (0 picks a free port)",
    )
    serve.add_argument(
        "--allow-host",
        action="append",
        default=None,
        metavar="HOST",
        help="Host header an MCP endpoint accepts (default: localhost names); '*' for any",
    )
    serve.add_argument(
        "--allow-origin",
        action="append",
        default=None,
        metavar="ORIGIN",
        help="browser Origin an MCP endpoint accepts (default: local origins)",
    )
    serve.add_argument(
        "--cors-origin",
        action="append",
        default=None,
        metavar="ORIGIN",
        help="browser origin every block answers with CORS headers ('*' for any; or NAFTIKO_CORS_ORIGINS)",
    )
    serve.add_argument(
        "--control-port",
        default=None,
        metavar="PORT",
        help="serve the control block (health, status, metrics, traces) on PORT, 0 for a free one;"
        " adds one when no file declares it (or NAFTIKO_CONTROL_PORT)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="serve with N processes sharing the ports, started and watched by this one (or NAFTIKO_WORKERS;"
        " default 1)",
    )
    serve.add_argument(
        "--reload",
        action="store_true",
        help="load the files again when they change, and serve them if they load (SIGHUP always does)",
    )
    serve.add_argument(
        "--reload-interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how often --reload looks at the files (default 0.5)",
    )
    serve.add_argument(
        "--grace",
        type=float,
        default=None,
        metavar="SECONDS",
        help="time requests in flight get to finish after a reload, and workers to stop before they are"
        " killed (default 10, or NAFTIKO_GRACE)",
    )
    serve.add_argument(
        "--stdio",
        nargs="?",
        const="",
        default=None,
        metavar="NAMESPACE",
        help="serve one MCP exposes block over stdin/stdout instead",
    )
    with_upstream(serve)
    serve.set_defaults(run=cmd_serve)

    validate = commands.add_parser("validate", help="check files; errors as file:line:col: message")
    validate.add_argument("paths", nargs="+", metavar="PATH")
    validate.set_defaults(run=cmd_validate)

    convert = commands.add_parser("convert", help="rewrite a capability file in the other dialect, comments kept")
    convert.add_argument("file", metavar="FILE")
    convert.add_argument("--to", required=True, choices=["ikanos", "naftiko"], help="the dialect to write")
    convert.add_argument("-o", "--output", metavar="OUT", help="write to OUT instead of stdout")
    convert.set_defaults(run=cmd_convert)

    export = commands.add_parser("export", help="write what a capability exposes in another format")
    export_openapi = export.add_subparsers(dest="format", required=True).add_parser(
        "openapi", help="the OpenAPI 3.1 document of a REST exposes block"
    )
    export_openapi.add_argument("file", metavar="FILE")
    export_openapi.add_argument("--namespace", metavar="NS", help="the REST exposes block (needed when several)")
    export_openapi.add_argument("-o", "--output", metavar="OUT", help="write to OUT instead of stdout")
    export_openapi.set_defaults(run=cmd_export_openapi)

    listing = commands.add_parser("list", help="namespaces, operations, REST routes and MCP tools")
    listing.add_argument("paths", nargs="+", metavar="PATH")
    listing.set_defaults(run=cmd_list)

    call = commands.add_parser("call", help="call one consumed operation and print its JSON")
    call.add_argument("operation", metavar="NS.OPERATION")
    call.add_argument("arguments", nargs="*", metavar="name=value")
    call.add_argument(
        "--path",
        dest="paths",
        action="append",
        default=None,
        metavar="PATH",
        help="capability file or folder (default: ./capabilities)",
    )
    with_upstream(call)
    call.set_defaults(run=cmd_call)

    imports = commands.add_parser("import", help="write a capability file from another format (openapi)")
    imports.add_argument("kind", choices=["openapi"], help="the format of SPEC")
    imports.add_argument("spec", metavar="SPEC", help="an OpenAPI 3.x or Swagger 2.0 file or http(s) URL")
    imports.add_argument("-n", "--namespace", default=None, help="the consumes namespace (default: the title)")
    imports.add_argument("-o", "--output", default=None, metavar="OUT", help="default ./NAMESPACE.yaml; - for stdout")
    imports.add_argument("--max-size", default=None, metavar="SIZE", help="largest document (default 16M)")
    imports.add_argument("--timeout", type=float, default=None, metavar="S", help="download time limit (default 30)")
    imports.set_defaults(run=cmd_import)
    return root


def cmd_import(args: argparse.Namespace) -> int:
    """`naftiko import openapi SPEC`: a capability file written from an OpenAPI document (engine/openapi)."""
    from ..engine import ImportLimits, import_openapi

    limits = ImportLimits.from_options(os.environ, args.max_size, args.timeout)
    imported = import_openapi(args.spec, namespace=args.namespace, limits=limits)
    for note in imported.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.output == "-":
        sys.stdout.write(imported.yaml())
        return 0
    target = args.output or f"{imported.namespace}.yaml"
    if args.output is None and os.path.exists(target):
        raise RequestError(f"{target} exists: name another file with -o, or -o - for stdout")
    with open(target, "w", encoding="utf-8") as handle:
        handle.write(imported.yaml())
    print(f"wrote {target} (namespace {imported.namespace}; check it: naftiko validate {target})", file=sys.stderr)
    return 0


def _said(exc: BaseException) -> list[str]:
    return [f"naftiko: {exc}"]


EXIT_CODES: dict[type[BaseException], tuple[int, Callable[[Any], list[str]]]] = {
    CapabilityError: (1, lambda e: [str(p) for p in e.problems]),  # one `file:line:col: message` per problem
    RequestError: (2, _said),  # the command line was wrong
    UnknownOperation: (2, _said),
    NaftikoError: (1, _said),
    KeyboardInterrupt: (130, lambda e: []),
}
"""What each error kind makes the CLI print on stderr and exit with, looked up by the exception's MRO.
Anything else is a bug and keeps its traceback."""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    args.argv = argv  # what a supervisor starts its workers with
    worker = os.environ.get("NAFTIKO_WORKER")  # set by a supervisor for its workers (adapters/workers.py)
    args.log_format = _log_format(getattr(args, "log_format", None), os.environ)
    handler = logging.StreamHandler(sys.stderr)
    if args.log_format == "json":
        from .control.accesslog import JsonFormatter

        handler.setFormatter(JsonFormatter({"worker": int(worker)} if worker and worker.isdigit() else None))
    else:
        prefix = f"naftiko[worker {worker}]" if worker is not None else "naftiko"
        handler.setFormatter(logging.Formatter(f"{prefix}: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[handler])
    if getattr(args, "paths", None) is None:
        args.paths = ["capabilities"]
    try:
        return args.run(args)
    except (NaftikoError, KeyboardInterrupt) as exc:
        answer = answer_for(EXIT_CODES, exc)
        assert answer is not None  # NaftikoError and KeyboardInterrupt are both in the table
        code, lines = answer
        for line in lines(exc):
            print(line, file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
