"""A local, in-memory stand-in for PostHog's Tasks API.

It plays the *upstream*: the same paths, shapes, status codes and error bodies as
``/api/projects/{project_id}/tasks/`` on PostHog, with bearer-key scopes, limit/
offset pagination, JSONL logs, session-log filters, JSON-RPC commands, artifacts
with presigned upload/download over loopback, and a real SSE ``stream/`` fed by a
simulated cloud worker. Behaviour reference: ``posthog-tasks-api.md``.

Usage::

    python -m examples.posthog_standin --port 8000
    curl -H 'Authorization: Bearer phx_demo_key' http://127.0.0.1:8000/api/projects/@current/tasks/

or in-process: ``from examples.posthog_standin import create_app``.
"""

from .app import create_app

__all__ = ["create_app"]
