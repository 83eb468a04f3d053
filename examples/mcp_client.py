"""An agent's first steps over MCP, with the official SDK: create a task, run it, follow the run.

.venv/bin/python examples/mcp_client.py http://127.0.0.1:9091/mcp [http://127.0.0.1:9090/mcp]
"""

from __future__ import annotations

import asyncio
import sys

from mcp import Client


async def main(tasks_url: str, runs_url: str) -> None:
    async with Client(tasks_url) as tasks, Client(runs_url) as runs:
        print("protocol", tasks.protocol_version, "tools:", [t.name for t in (await tasks.list_tools()).tools])
        created = await tasks.call_tool(
            "create-task",
            {
                "project_id": "@current",
                "body": {
                    "title": "Fix the flaky test",
                    "description": "Make test_login stable",
                    "repository": "acme/web",
                },
            },
        )
        task = created.structured_content
        print("created task", task["slug"], task["id"])
        started = await tasks.call_tool("run-task", {"project_id": "@current", "id": task["id"], "body": {}})
        run = started.structured_content["latest_run"]
        print("started run", run["id"], run["status"])
        for _ in range(20):
            got = await runs.call_tool(
                "api-managing-task-runs-each", {"project_id": "@current", "task_id": task["id"], "id": run["id"]}
            )
            status = got.structured_content["status"]
            print("run status", status)
            if status in ("completed", "failed", "cancelled"):
                break
            await asyncio.sleep(0.5)


if __name__ == "__main__":
    tasks_url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:9091/mcp"
    runs_url = sys.argv[2] if len(sys.argv) > 2 else tasks_url.replace(":9091", ":9090")
    asyncio.run(main(tasks_url, runs_url))
