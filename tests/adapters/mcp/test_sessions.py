"""Signed handshake-era session ids (`adapters/mcp/sessions.py`): what any instance with the key accepts,
and what it refuses (tampered, foreign, expired, ended), with their bounds; then the same over `McpHttpApp`."""

from __future__ import annotations

import base64
import logging
import struct
from typing import Any

import httpx
import pytest

from naftiko.adapters.mcp.eras import DEFAULT_LEGACY_VERSION, LEGACY_VERSIONS
from naftiko.adapters.mcp.http import McpHttpApp
from naftiko.adapters.mcp.sessions import DEFAULT_SESSION_TTL, Sessions

from tests.adapters.mcp.protocol.fake_server import build_backend

SECRET = b"a shared secret of enough bytes"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def decoded(session_id: str) -> bytes:
    return base64.urlsafe_b64decode(session_id + "=" * (-len(session_id) % 4))


def test_an_id_is_short_url_safe_and_names_its_version_and_lifetime() -> None:
    clock = Clock()
    sessions = Sessions(SECRET, ttl=3600, clock=clock)
    for version in LEGACY_VERSIONS:
        session_id = sessions.open(version)
        assert len(session_id) == 63 and set(session_id) <= set(ALPHABET)
        raw = decoded(session_id)
        form, issued, expires = struct.unpack_from(">BII", raw)
        assert (form, issued, expires) == (1, clock.now, clock.now + 3600)
        assert raw[21:-16] == version.encode()
        assert sessions.version(session_id, None, LIST) == version
    assert len({sessions.open("2025-06-18") for _ in range(1000)}) == 1000  # the nonce makes each one new


def test_any_instance_with_the_secret_accepts_an_id_and_no_other_does() -> None:
    session_id = Sessions(SECRET).open("2025-06-18")
    assert Sessions(SECRET).version(session_id, "2025-11-25", LIST) == "2025-06-18"  # the session's version wins
    assert Sessions(b"another secret of enough bytes").version(session_id, None, LIST) is None
    assert Sessions().version(session_id, None, LIST) is None  # no secret: one drawn at random
    assert Sessions().version(Sessions().open("2025-06-18"), None, LIST) is None
    scoped = Sessions(SECRET, scope="tasks-mcp").open("2025-06-18")  # the server's name is in the key
    assert Sessions(SECRET, scope="tasks-mcp").version(scoped, None, LIST) == "2025-06-18"
    assert Sessions(SECRET, scope="runs-mcp").version(scoped, None, LIST) is None
    assert Sessions(SECRET).version(scoped, None, LIST) is None


def test_every_changed_character_is_refused() -> None:
    sessions = Sessions(SECRET)
    session_id = sessions.open("2025-03-26")
    for at, char in enumerate(session_id):
        for other in {ALPHABET[(ALPHABET.index(char) + step) % 64] for step in (1, 2, 32)}:
            tampered = session_id[:at] + other + session_id[at + 1 :]
            assert sessions.version(tampered, None, LIST) is None, (at, other)
    assert sessions.version(session_id, None, LIST) == "2025-03-26"


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s[:-1],
        lambda s: s + "A",
        lambda s: s + "AAAA",
        lambda s: s[:40],
        lambda s: s.replace("-", "+").replace("_", "/"),
        lambda s: s + "=",
        lambda s: "",
        lambda s: "nope",
        lambda s: "é" * 63,
        lambda s: "A" * 10_000,
        lambda s: base64.urlsafe_b64encode(b"\0" * 47).decode().rstrip("="),
    ],
)
def test_malformed_ids_are_refused(change: Any) -> None:
    sessions = Sessions(SECRET)
    session_id = sessions.open("2025-06-18")
    changed = change(session_id)
    assert changed != session_id or "-" not in session_id and "_" not in session_id
    if changed != session_id:
        assert sessions.version(changed, None, LIST) is None


def test_a_signed_id_with_a_version_or_format_we_do_not_speak_is_refused() -> None:
    sessions = Sessions(SECRET)
    for form, version in ((1, b"1999-01-01"), (2, b"2025-06-18"), (1, b"2026-07-28")):
        body = struct.pack(">BII", form, 1, 2**32 - 1) + b"n" * 12 + version
        forged = base64.urlsafe_b64encode(body + sessions._tag(body)).decode().rstrip("=")
        assert sessions.version(forged, None, LIST) is None


def test_an_id_expires_after_its_ttl_on_every_instance() -> None:
    clock = Clock()
    issuer = Sessions(SECRET, ttl=60, clock=clock)
    other = Sessions(SECRET, ttl=DEFAULT_SESSION_TTL, clock=clock)  # the token's own expiry governs
    session_id = issuer.open("2025-06-18")
    clock.now += 59
    assert issuer.version(session_id, None, LIST) == other.version(session_id, None, LIST) == "2025-06-18"
    clock.now += 1
    assert issuer.version(session_id, None, LIST) is None and other.version(session_id, None, LIST) is None
    assert not issuer.end(session_id)


def test_delete_ends_a_session_where_it_is_seen_and_only_there() -> None:
    here, there = Sessions(SECRET), Sessions(SECRET)
    session_id = here.open("2025-06-18")
    assert here.version(session_id, None, LIST) == "2025-06-18"  # now in the verified cache
    assert here.end(session_id)
    assert here.version(session_id, None, LIST) is None
    assert not here.end(session_id)
    assert there.version(session_id, None, LIST) == "2025-06-18"  # no shared store: documented
    assert there.end(session_id) and there.version(session_id, None, LIST) is None


def test_the_deny_list_is_bounded_earliest_ended_dropped_first_and_expired_ones_purged() -> None:
    clock = Clock()
    sessions = Sessions(SECRET, ttl=100, max_ended=2, clock=clock)
    first, second, third = (sessions.open("2025-06-18") for _ in range(3))
    for session_id in (first, second, third):
        assert sessions.end(session_id)
    assert len(sessions._ended) == 2
    assert sessions.version(first, None, LIST) == "2025-06-18"  # dropped from the list: accepted again here
    assert sessions.version(second, None, LIST) is None and sessions.version(third, None, LIST) is None

    clock.now += 50
    late = sessions.open("2025-06-18")
    clock.now += 50  # the first three are past their expiry, `late` is not
    assert sessions.end(late)
    assert list(sessions._ended.values()) == [clock.now + 50]

    nothing_kept = Sessions(SECRET, max_ended=0)
    session_id = nothing_kept.open("2025-06-18")
    assert nothing_kept.end(session_id) and not nothing_kept._ended
    assert nothing_kept.version(session_id, None, LIST) == "2025-06-18"


def test_the_verified_cache_is_bounded_and_never_holds_an_ended_id() -> None:
    sessions = Sessions(SECRET, max_verified=2)
    ids = [sessions.open("2025-06-18") for _ in range(3)]
    for session_id in ids:
        assert sessions.version(session_id, None, LIST) == "2025-06-18"
    assert list(sessions._verified) == ids[1:]
    assert sessions.end(ids[2])
    assert ids[2] not in sessions._verified
    assert sessions.version(ids[2], None, LIST) is None and ids[2] not in sessions._verified
    assert sessions.version("garbage", None, LIST) is None and "garbage" not in sessions._verified


def test_no_session_id_or_initialize_speaks_the_header_or_the_default() -> None:
    sessions = Sessions(SECRET)
    assert sessions.version(None, None, LIST) == DEFAULT_LEGACY_VERSION
    assert sessions.version(None, "2025-06-18", LIST) == "2025-06-18"
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    assert sessions.version("stale", "2025-11-25", initialize) == "2025-11-25"


def test_bad_options_and_a_short_secret(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ValueError):
        Sessions(SECRET, ttl=0.5)
    with pytest.raises(ValueError):
        Sessions(SECRET, max_ended=-1)
    with caplog.at_level(logging.WARNING):
        Sessions(b"short")
    assert "5 bytes long" in caplog.text and "short" not in caplog.text  # its length, never the secret


# ------------------------------------------------------------------ over HTTP, two apps in process


def client(app: McpHttpApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000")


def rpc(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, **({"params": params} if params is not None else {})}


@pytest.mark.anyio
async def test_two_apps_with_one_secret_share_sessions_and_a_foreign_one_is_404() -> None:
    one, two = McpHttpApp(build_backend(), session_secret=SECRET), McpHttpApp(build_backend(), session_secret=SECRET)
    stranger = McpHttpApp(build_backend())
    async with client(one) as a, client(two) as b, client(stranger) as c:
        opened = await a.post("/mcp", json=rpc("initialize", {"protocolVersion": "2025-03-26"}))
        session = {"Mcp-Session-Id": opened.headers["mcp-session-id"]}
        added = await b.post(
            "/mcp", json=rpc("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}}), headers=session
        )
        assert added.status_code == 200 and added.json()["result"]["content"][0]["text"] == "3"
        foreign = await c.post("/mcp", json=rpc("ping"), headers=session)
        assert foreign.status_code == 404 and foreign.json()["error"]["message"] == "Session not found"

        assert (await b.delete("/mcp", headers=session)).status_code == 200
        assert (await b.post("/mcp", json=rpc("ping"), headers=session)).status_code == 404
        assert (await b.delete("/mcp", headers=session)).status_code == 404
        assert (await a.post("/mcp", json=rpc("ping"), headers=session)).status_code == 200  # it did not see the DELETE
        assert (await c.delete("/mcp", headers=session)).status_code == 404


@pytest.mark.anyio
async def test_the_app_passes_its_session_options_on() -> None:
    app = McpHttpApp(build_backend(), session_ttl=120, max_ended_sessions=1)
    async with client(app) as http:
        ids = []
        for _ in range(2):
            opened = await http.post("/mcp", json=rpc("initialize", {"protocolVersion": "2025-06-18"}))
            ids.append(opened.headers["mcp-session-id"])
            _, issued, expires = struct.unpack_from(">BII", decoded(ids[-1]))
            assert expires - issued == 120
        for session_id in ids:
            assert (await http.delete("/mcp", headers={"Mcp-Session-Id": session_id})).status_code == 200
        statuses = [(await http.post("/mcp", json=rpc("ping"), headers={"Mcp-Session-Id": s})).status_code for s in ids]
        assert statuses == [200, 404]  # one ended id remembered: the earlier one is accepted again
