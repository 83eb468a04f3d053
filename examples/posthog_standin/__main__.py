"""Serve the stand-in: ``python -m examples.posthog_standin [--port 8000] ...``.

Prints one line with the base URL to stderr once the socket is listening
(``--port 0`` picks a free port and prints the real one).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import uvicorn

from .app import create_app
from .auth import WRITE


def parse_api_key(text: str) -> tuple[str, list[str]]:
    """``KEY`` (→ ``task:write``) or ``KEY:scope,scope``."""
    key, sep, scopes = text.partition(":")
    if not key:
        raise argparse.ArgumentTypeError("API key must not be empty")
    return key, [s.strip() for s in scopes.split(",") if s.strip()] if sep else [WRITE]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m examples.posthog_standin", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--api-key",
        action="append",
        type=parse_api_key,
        metavar="KEY[:scope,scope]",
        help="accepted personal API key (repeatable). KEY alone gets task:write; 'KEY:' with no scopes is a "
        "legacy all-access key. Default: phx_demo_key with task:write",
    )
    parser.add_argument("--project-id", type=int, default=1)
    parser.add_argument("--rate-limit", type=int, default=None, metavar="N", help="requests per minute per key")
    parser.add_argument("--run-step-seconds", type=float, default=0.4, help="simulated worker step delay")
    parser.add_argument("--artifact-dir", default=None, help="keep artifact bytes here instead of a temp dir")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    app = create_app(
        api_keys=dict(args.api_key) if args.api_key else None,
        project_id=args.project_id,
        rate_limit_per_minute=args.rate_limit,
        run_step_seconds=args.run_step_seconds,
        artifact_dir=args.artifact_dir,
    )
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="warning"))

    async def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        print(f"PostHog Tasks stand-in listening on http://{args.host}:{port}", file=sys.stderr, flush=True)

    announcer = asyncio.create_task(announce())
    await server.serve()
    announcer.cancel()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
