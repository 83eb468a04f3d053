"""The one-command demo: PostHog's Tasks API over REST and MCP, with no PostHog account.

Starts the local PostHog stand-in and `naftiko serve capabilities/` pointed at it, in one
process, prints the URLs and copy-paste examples, and stops everything on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from pathlib import Path

import uvicorn

from naftiko.adapters.server import Listener, bind, serve
from naftiko import CapabilityError, NaftikoError, Runtime
from examples.posthog_standin import create_app

ROOT = Path(__file__).resolve().parent.parent
DEMO_KEY = "phx_demo_key"


def _examples(listeners: list[Listener], upstream: str) -> str:
    urls = {listener.exposes.namespace: listener.url for listener in listeners}
    tasks_rest, runs_rest = urls.get("posthog-tasks-rest", ""), urls.get("posthog-task-runs-rest", "")
    tasks_mcp = urls.get("posthog-tasks-mcp", "")
    naftiko = str(ROOT / ".venv" / "bin" / "naftiko")
    claude = {
        "mcpServers": {
            "posthog-tasks": {
                "command": naftiko,
                "args": ["serve", str(ROOT / "capabilities" / "posthog-tasks.yaml"), "--stdio"],
                "env": {"POSTHOG_API_KEY": DEMO_KEY, "NAFTIKO_BASE_URI_POSTHOG_TASKS": upstream},
            }
        }
    }
    lines = ["", f"PostHog stand-in (plays api.posthog.com): {upstream}   API key: {DEMO_KEY}", ""]
    lines += [f"  {listener.summary:<40} {listener.url}" for listener in listeners]
    lines += [
        "",
        "1) REST: create a task, start a run, then list its runs:",
        f"   curl -s -X POST '{tasks_rest}/v1/api/projects/@current/tasks' -H 'Content-Type: application/json' \\",
        '        -d \'{"title": "Fix the flaky test", "description": "Make test_login stable", '
        '"repository": "acme/web"}\'',
        f"   curl -s -X POST '{tasks_rest}/v1/api/projects/@current/tasks/<task id>/run' "
        "-H 'Content-Type: application/json' -d '{}'",
        f"   curl -s '{runs_rest}/v1/api/projects/@current/tasks/<task id>/runs'",
        f"   curl -N '{runs_rest}/v1/api/projects/@current/tasks/<task id>/runs/<run id>/stream'",
        "",
        "2) MCP: list and call tools (MCP Inspector CLI, or the official Python SDK):",
        f"   npx @modelcontextprotocol/inspector --cli {tasks_mcp} --method tools/list",
        f"   npx @modelcontextprotocol/inspector --cli {tasks_mcp} --method tools/call --tool-name list-tasks "
        "--tool-arg project_id=@current",
        f"   .venv/bin/python examples/mcp_client.py {tasks_mcp}",
        "",
        "3) Claude Desktop (claude_desktop_config.json), over stdio while this demo runs:",
        *("   " + line for line in json.dumps(claude, indent=2).splitlines()),
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    sock = bind("127.0.0.1", args.standin_port, "the PostHog stand-in")
    upstream = f"http://127.0.0.1:{sock.getsockname()[1]}"
    standin = uvicorn.Server(uvicorn.Config(create_app(), log_level="warning", lifespan="on"))
    standin.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]  # serve() owns signals
    standin_task = asyncio.create_task(standin.serve(sockets=[sock]))
    runtime = Runtime.load(
        ROOT / "capabilities",
        environ={"POSTHOG_API_KEY": DEMO_KEY},
        base_uris={"posthog-task-runs": upstream, "posthog-tasks": upstream},
    )
    try:
        await serve(
            runtime, ports=args.ports, on_ready=lambda listeners: print(_examples(listeners, upstream), flush=True)
        )
    finally:
        standin.should_exit = True
        await standin_task


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bash examples/demo.sh", description=__doc__)
    parser.add_argument("--standin-port", type=int, default=8010, help="port of the PostHog stand-in (default 8010)")
    parser.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="NS=PORT",
        help="override an exposes block's port, as in naftiko serve",
    )
    args = parser.parse_args(argv)
    args.ports = {k: int(v) for k, _, v in (p.partition("=") for p in args.port)}
    return args


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="naftiko: %(message)s", stream=sys.stderr)
    try:
        asyncio.run(main(parse_args()))
    except (CapabilityError, NaftikoError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        sys.exit(1)
