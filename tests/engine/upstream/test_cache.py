"""The response cache's parts: the LRU's bounds, the freshness rules (Cache-Control, Age, Expires, the
file's ttl as a cap), key separation by credentials, the block read at load (merged, positioned problems),
and lookups, expiry and ETag revalidation against a real loopback upstream under a fake clock."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from email.utils import format_datetime
from datetime import datetime, UTC
from pathlib import Path
from collections.abc import AsyncIterator

import pytest

from naftiko.engine import CapabilityError, Runtime
from naftiko.engine.errors import UpstreamError, UpstreamTimeout
from naftiko.engine.upstream.cache import CachedOperation, CachedResponse, Entry, Store, cache_key, lifetime
from naftiko.engine.upstream.client import Upstream
from naftiko.engine.upstream.request import Prepared
from tests.support import RecordingUpstream, Reply, ThreadedServer, blocks_file, load_with_blocks

# --------------------------------------------------------------------------- the store


def _entry(body: bytes) -> Entry:
    return Entry(200, "application/json", None, [], body, 0.0, None, None)


def test_the_store_evicts_the_least_recently_used_past_max_entries() -> None:
    store = Store(max_entries=2, max_bytes=10_000)
    store.put("a", _entry(b"1"))
    store.put("b", _entry(b"2"))
    assert store.get("a") is not None  # a is now the most recently used
    store.put("c", _entry(b"3"))
    assert store.get("b") is None and store.get("a") is not None and store.get("c") is not None
    assert len(store) == 2 and store.evictions == 1


def test_the_store_keeps_its_total_bytes_under_max_bytes() -> None:
    size = _entry(b"x" * 100).size
    store = Store(max_entries=100, max_bytes=size * 3)
    for n in range(10):
        store.put(str(n), _entry(b"x" * 100))
        assert store.bytes <= store.max_bytes
    assert len(store) == 3 and [store.get(str(n)) is not None for n in (7, 8, 9)] == [True] * 3
    assert store.put("huge", _entry(b"x" * size * 4)) is False and store.get("huge") is None
    store.put("7", _entry(b"y"))  # replacing an entry frees its old bytes
    assert store.bytes == 2 * size + _entry(b"y").size


# --------------------------------------------------------------------------- freshness


def test_freshness_follows_cache_control_capped_by_ttl() -> None:
    assert lifetime({}, 30.0, True, 0.0) == 30.0
    assert lifetime({"cache-control": "max-age=10"}, 30.0, True, 0.0) == 10.0
    assert lifetime({"cache-control": "public, max-age=600"}, 30.0, True, 0.0) == 30.0  # ttl caps it
    assert lifetime({"cache-control": "max-age=60, s-maxage=5"}, 30.0, True, 0.0) == 5.0  # shared cache
    assert lifetime({"cache-control": "max-age=10", "age": "4"}, 30.0, True, 0.0) == 6.0
    assert lifetime({"cache-control": "no-store"}, 30.0, True, 0.0) is None
    assert lifetime({"cache-control": "private, max-age=60"}, 30.0, True, 0.0) is None
    assert lifetime({"cache-control": "no-cache"}, 30.0, True, 0.0) == 0.0  # stored only to revalidate
    assert lifetime({"vary": "*"}, 30.0, True, 0.0) is None
    assert lifetime({"cache-control": "no-store"}, 30.0, False, 0.0) == 30.0  # respectCacheControl: false
    assert lifetime({"set-cookie": "s=1"}, 30.0, False, 0.0) is None  # a session is never replayed


def test_expires_counts_from_the_upstreams_date() -> None:
    now = 1_800_000_000.0

    def http_date(at: float) -> str:
        return format_datetime(datetime.fromtimestamp(at, tz=UTC), usegmt=True)

    assert lifetime({"expires": http_date(now + 8), "date": http_date(now)}, 30.0, True, 0.0) == 8.0
    assert lifetime({"expires": http_date(now + 8)}, 30.0, True, now) == pytest.approx(8.0)
    assert lifetime({"expires": http_date(now - 8)}, 30.0, True, now) == 0.0
    assert lifetime({"expires": "0"}, 30.0, True, now) == 0.0  # unreadable: already expired


def test_keys_differ_by_every_header_and_the_target() -> None:
    a = Prepared("GET", "/x?q=1", (("Authorization", "Bearer a"),), None)
    assert cache_key(a) == cache_key(Prepared("GET", "/x?q=1", (("authorization", "Bearer a"),), None))
    assert cache_key(a) != cache_key(Prepared("GET", "/x?q=1", (("Authorization", "Bearer b"),), None))
    assert cache_key(a) != cache_key(
        Prepared("GET", "/x?q=1", (("Authorization", "Bearer a"), ("Cookie", "s=1")), None)
    )
    assert cache_key(a) != cache_key(Prepared("GET", "/x?q=2", (("Authorization", "Bearer a"),), None))
    assert cache_key(a) != cache_key(Prepared("HEAD", "/x?q=1", (("Authorization", "Bearer a"),), None))


# --------------------------------------------------------------------------- the block at load


def test_a_block_is_read_and_merged_field_by_field(tmp_path: Path) -> None:
    runtime = load_with_blocks(
        tmp_path,
        "cache: {ttl: 1m, maxEntries: 5, maxBytes: 2MiB, maxEntryBytes: 64KiB, respectCacheControl: false}",
        "cache: {ttl: 250ms}",
    )
    mine, other = runtime.caches["up.get-things"], runtime.caches["up.other"]
    assert (mine.ttl, mine.max_entry_bytes, mine.respect) == (0.25, 64 * 1024, False)
    assert (other.ttl, other.max_entry_bytes, other.respect) == (60.0, 64 * 1024, False)
    assert mine.store is other.store and (mine.store.max_entries, mine.store.max_bytes) == (5, 2 * 1024**2)


def test_an_operation_block_alone_caches_only_that_operation(tmp_path: Path) -> None:
    runtime = load_with_blocks(tmp_path, operation="cache: {ttl: 2s}")
    assert set(runtime.caches) == {"up.get-things"}
    assert runtime.caches["up.get-things"].respect is True
    assert load_with_blocks(tmp_path).caches == {}
    assert set(load_with_blocks(tmp_path, "cache: {}", "cache: false").caches) == {"up.other"}


def test_problems_are_positioned(tmp_path: Path) -> None:
    with pytest.raises(CapabilityError) as failed:
        load_with_blocks(
            tmp_path,
            "cache: {ttl: soon, maxEntries: 0, maxBytes: lots, respectCacheControl: maybe, size: 1}",
            "cache: {maxEntries: 3, maxBytes: 1MiB}",
        )
    problems = [str(p) for p in failed.value.problems]
    joined = "\n".join(problems)
    assert "cap.yaml:7:" in joined and "'ttl' must be a duration from 1ms to 1h" in joined
    assert "'maxEntries' must be an integer from 1 to 1000000; got 0" in joined
    assert "'maxBytes' must be a positive size" in joined
    assert "'respectCacheControl' must be true or false" in joined
    assert "size" in joined
    assert "'maxEntries' bounds the namespace's store" in joined and "'maxBytes' bounds the namespace's store" in joined
    assert all(p.startswith(str(tmp_path / "cap.yaml") + ":") for p in problems)
    assert all("(at capability.consumes[0]." in p for p in problems)


# --------------------------------------------------------------------------- over loopback, a fake clock


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _cached(clock: Clock, **options: object) -> CachedOperation:
    settings = {"ttl": 30.0, "max_entry_bytes": 1024, "respect": True} | options
    return CachedOperation(Store(100, 1_000_000), clock=clock, **settings)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def _against(recording: RecordingUpstream, clock: Clock) -> AsyncIterator[tuple[Upstream, CachedOperation]]:
    """A client of `recording`, served on loopback, with a fresh cache in front of it."""
    with ThreadedServer(recording) as url:
        upstream = Upstream("up", url, 5.0)
        try:
            yield upstream, _cached(clock)
        finally:
            await upstream.close()


async def _get(cached: CachedOperation, upstream: Upstream, target: str = "/x", token: str = "a") -> CachedResponse:
    request = Prepared("GET", target, (("Authorization", f"Bearer {token}"),), None)
    response = await cached.send(upstream, "up.op", request)
    assert isinstance(response, CachedResponse)
    return response


@pytest.mark.anyio
async def test_a_hit_a_miss_after_expiry_and_bodies_replayed() -> None:
    recording, clock = RecordingUpstream(), Clock()
    recording.reply("GET", "/x", Reply(json={"n": 1}, headers={"x-kept": "yes"}))
    async with _against(recording, clock) as (upstream, cached):
        first = await _get(cached, upstream)
        assert first.state == "miss" and await first.json() == {"n": 1}
        second = await _get(cached, upstream)
        assert second.state == "hit" and await second.read() == b'{"n": 1}' and len(recording.requests) == 1
        assert ("x-kept", "yes") in second.headers() and ("content-length", "8") in second.headers()
        assert [c async for c in second.chunks()] == [b'{"n": 1}'] and second.is_json
        second.limit(3, "too big")
        with pytest.raises(Exception, match="too big"):
            [c async for c in second.chunks()]
        clock.now += 31
        assert (await _get(cached, upstream)).state == "miss" and len(recording.requests) == 2


@pytest.mark.anyio
async def test_tokens_never_share_an_entry_and_no_store_is_never_stored() -> None:
    recording, clock = RecordingUpstream(), Clock()
    recording.reply("GET", "/private", Reply(json={}, headers={"cache-control": "no-store"}))
    async with _against(recording, clock) as (upstream, cached):
        assert (await _get(cached, upstream, token="a")).state == "miss"
        assert (await _get(cached, upstream, token="b")).state == "miss"
        assert (await _get(cached, upstream, token="a")).state == "hit"
        assert len(recording.requests) == 2
        for _ in range(2):
            response = await cached.send(upstream, "up.op", Prepared("GET", "/private", (), None))
            assert not isinstance(response, CachedResponse)
            await response.read()
        assert len(recording.requests) == 4 and len(cached.store) == 2


@pytest.mark.anyio
async def test_a_stale_entry_with_an_etag_is_revalidated() -> None:
    recording, clock = RecordingUpstream(), Clock()
    recording.reply("GET", "/x", Reply(json={"v": 1}, headers={"etag": '"v1"', "cache-control": "max-age=5"}))
    async with _against(recording, clock) as (upstream, cached):
        await _get(cached, upstream)
        clock.now += 6
        recording.reply("GET", "/x", Reply(status=304, body=b"", headers={"etag": '"v1"'}))
        again = await _get(cached, upstream)
        assert recording.last.headers["if-none-match"] == '"v1"'
        assert again.state == "revalidated" and again.status == 200 and await again.json() == {"v": 1}
        assert (await _get(cached, upstream)).state == "hit" and len(recording.requests) == 2


@pytest.mark.anyio
async def test_large_non_200_and_unsafe_answers_pass_through() -> None:
    recording, clock = RecordingUpstream(), Clock()
    recording.reply("GET", "/big", Reply(body=b"x" * 2048))  # chunked: read up to 1 KiB, then streamed on
    recording.reply("GET", "/long", Reply(body=b"y" * 2048, headers={"content-length": "2048"}))
    recording.reply("GET", "/short", Reply(body=b"z" * 100, headers={"content-length": "100"}))
    recording.reply("GET", "/gone", Reply(status=404, json={}))
    async with _against(recording, clock) as (upstream, cached):
        for target in ("/big", "/big", "/long", "/long", "/gone", "/gone"):
            response = await cached.send(upstream, "up.op", Prepared("GET", target, (), None))
            assert not isinstance(response, CachedResponse)
            assert len(await response.read()) == (2048 if target != "/gone" else 2)
        spliced = await cached.send(upstream, "up.op", Prepared("GET", "/big", (), None))
        assert b"".join([c async for c in spliced.chunks()]) == b"x" * 2048
        for state in ("miss", "hit"):
            short = await cached.send(upstream, "up.op", Prepared("GET", "/short", (), None))
            assert isinstance(short, CachedResponse) and short.state == state and await short.read() == b"z" * 100
        posted = await cached.send(upstream, "up.op", Prepared("POST", "/x", (), b"{}"))
        assert not isinstance(posted, CachedResponse) and (await posted.read())
        assert len(recording.requests) == 9 and len(cached.store) == 1


@pytest.mark.anyio
async def test_a_head_answer_is_stored_with_the_length_a_get_would_have() -> None:
    recording, clock = RecordingUpstream(), Clock()
    recording.reply("HEAD", "/x", Reply(body=b"", headers={"content-length": "42", "etag": '"h"'}))
    async with _against(recording, clock) as (upstream, cached):
        for state in ("miss", "hit"):
            response = await cached.send(upstream, "up.op", Prepared("HEAD", "/x", (), None))
            assert isinstance(response, CachedResponse) and response.state == state
            assert ("content-length", "42") in response.headers() and await response.read() == b""
        get = await cached.send(upstream, "up.op", Prepared("GET", "/x", (), None))
        assert isinstance(get, CachedResponse) and get.state == "miss"  # HEAD and GET never share
        assert [r.method for r in recording.requests] == ["HEAD", "GET"]


# --------------------------------------------------------------------------- round 2: load-time rules

SEMANTIC = """\
naftiko: 1.0.0-alpha2
capability:
  consumes:
    - type: http
      namespace: up
      baseUri: http://127.0.0.1:1
      resources:
        - name: things
          path: /things
          operations:
            - {name: listed, method: GET}
            - {name: refused, method: GET, cache: false}
            - {name: created, method: POST}
            - {name: plain, method: GET}
  aggregates:
    - namespace: reads
      label: Reads
      functions:
        - name: listed
          description: cacheable
          semantics: {cacheable: true}
          call: up.listed
        - name: refused
          description: cacheable, but cache false
          semantics: {cacheable: true}
          call: up.refused
        - name: created
          description: cacheable is wrong for a POST
          semantics: {cacheable: true}
          call: up.created
        - name: plain
          description: not cacheable
          semantics: {cacheable: false}
          call: up.plain
  exposes:
    - type: rest
      namespace: r
      port: 9000
      resources:
        - path: /things
          operations:
            - {method: GET, ref: reads.listed}
"""


def test_semantics_cacheable_gives_its_get_the_default_policy(tmp_path: Path) -> None:
    path = tmp_path / "cap.yaml"
    path.write_text(SEMANTIC)
    runtime = Runtime.load(path)
    assert set(runtime.caches) == {"up.listed"}  # not cache: false, not a POST, not cacheable: false
    listed = runtime.caches["up.listed"]
    assert (listed.ttl, listed.max_entry_bytes, listed.respect, listed.stale_if_error) == (60.0, 1024**2, True, None)
    assert (listed.store.max_entries, listed.store.max_bytes) == (1000, 16 * 1024**2)


def test_a_cache_block_on_a_post_is_a_positioned_problem(tmp_path: Path) -> None:
    path = tmp_path / "cap.yaml"
    path.write_text(
        SEMANTIC.replace("{name: created, method: POST}", "{name: created, method: POST, cache: {ttl: 1s}}")
    )
    with pytest.raises(CapabilityError) as failed:
        Runtime.load(path)
    (problem,) = failed.value.problems
    assert str(problem).startswith(f"{path}:13:") and "a POST answer is never cached" in str(problem)
    path.write_text(SEMANTIC.replace("{name: created, method: POST}", "{name: created, method: POST, cache: false}"))
    assert set(Runtime.load(path).caches) == {"up.listed"}


def test_stale_if_error_is_read_and_merged(tmp_path: Path) -> None:
    runtime = load_with_blocks(tmp_path, "cache: {staleIfError: 5m}", "cache: {staleIfError: 10s}")
    assert runtime.caches["up.get-things"].stale_if_error == 10.0 and runtime.caches["up.other"].stale_if_error == 300
    with pytest.raises(CapabilityError, match="'staleIfError' must be a duration"):
        load_with_blocks(tmp_path, "cache: {staleIfError: forever}")


def test_a_redis_url_without_the_package_is_a_clear_start_up_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    monkeypatch.delitem(sys.modules, "naftiko.engine.upstream.rediscache", raising=False)
    path = blocks_file(tmp_path, "cache: {}")
    with pytest.raises(CapabilityError) as failed:
        Runtime.load(path, environ={"NAFTIKO_CACHE_REDIS_URL": "redis://127.0.0.1:1/0"})
    message = str(failed.value)
    assert "NAFTIKO_CACHE_REDIS_URL" in message and "pip install 'naftiko[redis]'" in message
    assert Runtime.load(path, environ={}).shared_cache is None  # unset: redis is never imported


def test_redis_settings_are_checked_at_start_up(tmp_path: Path) -> None:
    pytest.importorskip("redis", reason="the redis extra")
    path = blocks_file(tmp_path, "cache: {}")
    env = {"NAFTIKO_CACHE_REDIS_URL": "redis://127.0.0.1:1/0", "NAFTIKO_CACHE_REDIS_TIMEOUT": "soon"}
    with pytest.raises(CapabilityError, match="NAFTIKO_CACHE_REDIS_TIMEOUT must be a number of seconds"):
        Runtime.load(path, environ=env)
    with pytest.raises(CapabilityError, match="NAFTIKO_CACHE_REDIS_CONNECTIONS must be a whole number"):
        Runtime.load(path, environ={**env, "NAFTIKO_CACHE_REDIS_TIMEOUT": "1", "NAFTIKO_CACHE_REDIS_CONNECTIONS": "0"})
    runtime = Runtime.load(path, environ={**env, "NAFTIKO_CACHE_REDIS_TIMEOUT": "0.2"})
    assert runtime.caches["up.get-things"].shared is runtime.shared_cache
    assert runtime.shared_cache is not None and runtime.shared_cache.timeout == 0.2  # type: ignore[attr-defined]


def test_an_entry_survives_the_redis_encoding() -> None:
    pytest.importorskip("redis", reason="the redis extra")
    from naftiko.engine.upstream.rediscache import decode, encode

    entry = Entry(200, "application/json", "utf-8", [("etag", '"v"')], b'{"a": 1}', 5.5, '"v"', None, False, 9.5, 1.5)
    assert decode(encode(entry)) == entry
    assert decode(b"something else") is None and decode(encode(entry)[:20]) is None


# --------------------------------------------------------------------------- round 2: coalescing, stale, counts


@pytest.mark.anyio
async def test_parallel_misses_wait_for_one_request_unless_it_is_not_storable() -> None:
    recording, clock = RecordingUpstream(), Clock()
    recording.reply("GET", "/slow", Reply(json={"n": 1}, delay=0.2))
    recording.reply("GET", "/secret", Reply(json={}, headers={"cache-control": "no-store"}, delay=0.2))
    async with _against(recording, clock) as (upstream, cached):
        answers = await asyncio.gather(*(_get(cached, upstream, "/slow") for _ in range(5)))
        assert [a.state for a in answers] == ["miss", "hit", "hit", "hit", "hit"]
        assert len(recording.requests) == 1 and cached.pending == {}
        secret = [cached.send(upstream, "up.op", Prepared("GET", "/secret", (), None)) for _ in range(4)]
        for response in await asyncio.gather(*secret):
            assert not isinstance(response, CachedResponse) and await response.json() == {}
        assert len(recording.requests) == 5  # each waiter sent its own
        assert cached.counts == {"miss": 5, "stored": 1, "hit": 4, "bypass": 4}


@pytest.mark.anyio
async def test_a_waiter_waits_at_most_the_call_time() -> None:
    cached = _cached(Clock())
    upstream = Upstream("up", "http://127.0.0.1:1", 0.2)
    request = Prepared("GET", "/x", (), None)
    cached.pending[cache_key(request)] = asyncio.get_running_loop().create_future()  # never answered
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout, match="already in flight took more than 0.2 s"):
        await cached.send(upstream, "up.op", request)
    assert 0.15 < time.monotonic() - started < 2


@pytest.mark.anyio
async def test_a_stale_entry_answers_a_transport_failure_within_its_window() -> None:
    recording, clock = RecordingUpstream(), Clock()
    recording.reply("GET", "/x", Reply(json={"v": 1}, headers={"cache-control": "max-age=5"}))
    cached = _cached(clock, stale_if_error=60.0)
    with ThreadedServer(recording) as url:
        upstream = Upstream("up", url, 2.0)
        await _get(cached, upstream)
    try:
        clock.now += 10  # stale; the upstream is gone
        stale = await _get(cached, upstream)
        assert stale.state == "stale" and await stale.json() == {"v": 1} and stale.status == 200
        assert ("age", "10") in stale.headers() and ("warning", '111 - "Revalidation Failed"') in stale.headers()
        clock.now += 60  # past max-age + staleIfError
        with pytest.raises(UpstreamError):
            await _get(cached, upstream)
        assert cached.counts["stale"] == 1
    finally:
        await upstream.close()


def test_the_stale_window_comes_from_the_file_or_the_upstream() -> None:
    def window(control: str, mine: float | None, respect: bool = True) -> float:
        return _cached(Clock(), stale_if_error=mine, respect=respect)._stale_window({"cache-control": control})

    assert window("max-age=5", None) == 0.0
    assert window("max-age=5, stale-if-error=20", None) == 20.0  # the upstream's alone
    assert window("max-age=5, stale-if-error=20", 10.0) == 10.0  # the file's caps it
    assert window("max-age=5, stale-if-error=5", 10.0) == 5.0
    assert window("max-age=5, must-revalidate, stale-if-error=20", 10.0) == 0.0
    assert window("must-revalidate", 10.0, respect=False) == 10.0


@pytest.mark.anyio
async def test_a_5xx_on_revalidation_answers_the_stale_entry_and_counts_every_result() -> None:
    recording, clock = RecordingUpstream(), Clock()
    recording.reply("GET", "/x", Reply(json={"v": 1}, headers={"etag": '"v1"', "cache-control": "max-age=5"}))
    cached = _cached(clock, stale_if_error=30.0)
    with ThreadedServer(recording) as url:
        upstream = Upstream("up", url, 5.0)
        try:
            await _get(cached, upstream)
            await _get(cached, upstream)
            clock.now += 6
            recording.reply("GET", "/x", Reply(status=503, json={}))
            assert (await _get(cached, upstream)).state == "stale"
            assert recording.last.headers["if-none-match"] == '"v1"'
            recording.reply("GET", "/x", Reply(status=304, body=b"", headers={"etag": '"v1"'}))
            assert (await _get(cached, upstream)).state == "revalidated"
            assert cached.counts == {"miss": 3, "stored": 1, "hit": 1, "stale": 1, "revalidated": 1}
        finally:
            await upstream.close()
