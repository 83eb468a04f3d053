"""The report of a bench run: machine facts, goals with PASS/FAIL, markdown tables, a PNG chart."""

from __future__ import annotations

import collections
import os
import platform
import re
import sys
import statistics
from pathlib import Path
from typing import Any
from collections.abc import Callable

REST_TARGETS = {
    "direct": "upstream direct (floor)",
    "naftiko": "naftiko REST",
    "pyproxy": "pure Python proxy",
    "nginx": "nginx proxy_pass",
}
MCP_TARGETS = {
    "naftiko-modern": "naftiko MCP, modern",
    "naftiko-legacy": "naftiko MCP, legacy",
    "fastmcp-modern": "FastMCP from_openapi, modern",
    "fastmcp-legacy": "FastMCP from_openapi, legacy",
    "sdk-modern": "mcp SDK server, modern",
    "sdk-legacy": "mcp SDK server, legacy",
    "naftiko-rest": "naftiko REST (same process and rounds)",
}
CONCURRENCY_LEVELS = (1, 32, 128)


def machine() -> dict[str, Any]:
    """CPU model, cores, memory, kernel and Python, as the report names them."""
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kb = next(int(ln.split()[1]) for ln in meminfo if ln.startswith("MemTotal"))
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1048576, 1),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
    }


# --- helpers -------------------------------------------------------------------------------


def _get(data: Any, *keys: Any) -> Any:
    """data[k1][k2]..., with int keys also found as strings (JSON), or None."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        if key in data:
            data = data[key]
        elif str(key) in data:
            data = data[str(key)]
        else:
            return None
    return data


def _point(section: dict[str, Any] | None, target: str, payload: str, c: int) -> dict[str, Any] | None:
    return _get(section or {}, target, payload, "points", c)


def paired(
    a: dict[str, Any] | None,
    b: dict[str, Any] | None,
    key: str,
    combine: Callable[[float, float], float] = lambda x, y: x / y,
) -> float | None:
    """`combine(a, b)` round by round, then the median: the two were loaded one after the other
    in each round, so each pair saw the same machine. (A shared machine can slow down by half
    between rounds; a ratio of medians would compare a fast round with a slow one.) Falls back
    to the medians when the runs do not pair up."""
    if not a or not b:
        return None
    runs_a, runs_b = a.get("runs") or [], b.get("runs") or []
    if runs_a and len(runs_a) == len(runs_b) and all(key in r for r in runs_a + runs_b):
        return statistics.median(combine(x[key], y[key]) for x, y in zip(runs_a, runs_b, strict=True))
    return combine(a[key], b[key])


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a and b else "–"


def _ms(us: float | None) -> str:
    return f"{us / 1000:.3f}" if us is not None else "–"


def _num(x: float | None, fmt: str = "{:,.0f}") -> str:
    return fmt.format(x) if x is not None else "–"


def _load_range(data: dict[str, Any]) -> str:
    loads: list[float] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "load_avg" in node:
                loads.append(node["load_avg"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(data)
    return f"{min(loads):.2f}–{max(loads):.2f}" if loads else "–"


# --- goals ---------------------------------------------------------------------------------

GOALS_ISSUE = 16


def _rss_added(mcp: dict[str, Any] | None, payload: str, c: int) -> tuple[float | None, str]:
    """The naftiko MCP server's peak RSS during its `payload` runs at `c` (worse era) minus its
    idle RSS before the load; with a note of both."""
    worst: tuple[float, str, float, float] | None = None
    for era in ("modern", "legacy"):
        entry = _get(mcp, f"naftiko-{era}", payload) or {}
        peak, idle = _get(entry, "points", c, "peak_rss_mb"), entry.get("rss_idle_mb")
        if peak is not None and idle is not None and (worst is None or peak - idle > worst[0]):
            worst = (peak - idle, era, peak, idle)
    if worst is None:
        return None, ""
    return worst[0], f"{worst[0]:.1f} MB ({worst[1]} era: peak {worst[2]:.1f} MB, idle {worst[3]:.1f} MB)"


def goals(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 16's goals, each with the measured figure and PASS/FAIL (n/a when not measured)."""
    rest, mcp = data.get("rest"), data.get("mcp")
    out: list[dict[str, Any]] = []

    def add(goal: str, value: float | None, ok: Callable[[float], bool], shown: str) -> None:
        status = "n/a" if value is None else ("PASS" if ok(value) else "FAIL")
        out.append(
            {"goal": goal, "value": value, "measured": shown if value is not None else "not measured", "status": status}
        )

    def ratio_goal(goal: str, a: dict[str, Any] | None, b: dict[str, Any] | None, bound: float) -> None:
        v = paired(a, b, "rps")
        add(
            goal,
            v,
            lambda x: x >= bound,
            f"{_num(v, '{:.2f}')}× (medians {_num(a and a['rps'])} vs {_num(b and b['rps'])} req/s)",
        )

    for era in ("modern", "legacy"):
        for c in (1, 32):
            ratio_goal(
                f"1 MB JSON: MCP tools/call ≥ 0.3× our REST route at c{c} ({era} era)",
                _point(mcp, f"naftiko-{era}", "large", c),
                _point(mcp, "naftiko-rest", "large", c),
                0.3,
            )
    nk32 = _point(rest, "naftiko", "small", 32)
    v = nk32.get("cpu_us_per_request") if nk32 else None
    add("REST server CPU per request ≤ 60 µs at c32 (small JSON)", v, lambda x: x <= 60, f"{_num(v)} µs")
    ratio_goal(
        "REST throughput at c32 ≥ 0.4× nginx proxy_pass, one worker (small JSON)",
        nk32,
        _point(rest, "nginx", "small", 32),
        0.4,
    )
    nm = _point(mcp, "naftiko-modern", "small", 32)
    ratio_goal(
        "MCP modern tools/call at c32 ≥ 0.9× our REST route (small JSON, same process and rounds)",
        nm,
        _point(mcp, "naftiko-rest", "small", 32),
        0.9,
    )
    for peer, label, bound in (("fastmcp-modern", "FastMCP from_openapi", 20), ("sdk-modern", "the SDK server", 6)):
        ratio_goal(
            f"MCP modern tools/call at c32 ≥ {bound}× {label} (small JSON)",
            nm,
            _point(mcp, peer, "small", 32),
            bound,
        )
    seed = data.get("seed") or {}
    for goal, entry, bound in (
        ("Start-up < 0.3 s for the seed capability, worst of the starts", seed, 0.3),
        ("Start-up < 1.5 s for 10,000 operations, worst of the starts", _get(data, "scale", "10000") or {}, 1.5),
    ):
        worst = entry.get("startup_worst_s")
        runs = entry.get("startup_runs_s") or []
        add(
            goal,
            worst,
            lambda x, b=bound: x < b,
            f"worst {_num(worst, '{:.3f}')} s, median {_num(entry.get('startup_s'), '{:.3f}')} s ({len(runs)} starts)",
        )
    for which in ("first", "last"):
        big, small = _get(data, "scale", "10000", f"rest_{which}"), _get(data, "scale", "20", f"rest_{which}")
        v = paired(big, small, "p50_us")
        add(
            f"REST p50 at c1 on the {which} route with 10,000 operations within 10% of 20",
            v,
            lambda x: x <= 1.10,
            f"{_num(v, '{:.2f}')}× (medians {_ms(big and big['p50_us'])} vs {_ms(small and small['p50_us'])} ms)",
        )
    v = _get(seed, "serving", "peak_rss_mb")
    add(
        "Seed capability RSS < 60 MB (peak while serving REST and MCP at c32)",
        v,
        lambda x: x < 60,
        f"{_num(v, '{:.1f}')} MB (ready {_num(seed.get('rss_ready_mb'), '{:.1f}')} MB)",
    )
    dl = _get(data, "stream", "download_naftiko")
    v = dl["added_mb"] if dl else None
    mb = _get(data, "settings", "download_mb")
    add(
        f"Streaming a {mb} MiB download adds < 20 MB RSS" + ("" if mb in (None, 1024) else " (the goal says 1 GiB)"),
        v,
        lambda x: x < 20,
        f"{_num(v, '{:.1f}')} MB (idle {_num(dl and dl['rss_idle_mb'], '{:.1f}')} MB, "
        f"peak {_num(dl and dl['peak_rss_mb'], '{:.1f}')} MB)",
    )
    v, shown = _rss_added(mcp, "large", 32)
    add("A 1 MB MCP answer at c32 adds < 100 MB RSS (naftiko MCP server, peak − idle)", v, lambda x: x < 100, shown)
    workers = data.get("workers") or {}
    one, two = _get(workers, "workers-1-pinned", "points", 32), _get(workers, "workers-2-pinned", "points", 32)
    v = paired(two, one, "rps")
    out.append(
        {
            "goal": "Workers: 2 against 1 at c32, wrk pinned to one core (reported, no bound on 2 cores)",
            "value": v,
            "measured": f"{v:.2f}× ({_num(two and two['rps'])} vs {_num(one and one['rps'])} req/s)"
            if v is not None
            else "not measured",
            "status": "info" if v is not None else "n/a",
        }
    )
    return out


# --- against the baseline ------------------------------------------------------------------

WORSE = 0.9  # a ratio (≥ 1 = better) under this is flagged


def _figure(label: str, value: Any, unit: str, higher_is_better: bool, peer: str | None = None) -> dict[str, Any]:
    return {"label": label, "value": value, "unit": unit, "higher_is_better": higher_is_better, "peer": peer}


def headline(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The figures compared run to run, by a stable key: REST and MCP req/s at every level, server
    CPU µs/request at c32, start-up (median, worst), RSS, workers. naftiko's figures name a peer of
    the same run (`peer`: nginx proxy_pass for REST, FastMCP of the same era for MCP) whose ratio
    survives machine drift."""
    out: dict[str, dict[str, Any]] = {}
    rest, mcp = data.get("rest"), data.get("mcp")
    sections = (("rest", "REST", rest, REST_TARGETS), ("mcp", "MCP", mcp, MCP_TARGETS))
    for kind, title, section, targets in sections:
        for payload in ("small", "large"):
            for target, name in targets.items():
                if kind == "rest":
                    peer_target = "nginx" if target == "naftiko" else None
                else:
                    era = target.split("-")[1]
                    peer_target = f"fastmcp-{era}" if target.startswith("naftiko-") and era != "rest" else None
                for c in CONCURRENCY_LEVELS:
                    p = _point(section, target, payload, c)
                    if p is None:
                        continue
                    key = f"{kind}/{payload}/{target}/c{c}"
                    peer = f"{kind}/{payload}/{peer_target}/c{c}" if peer_target else None
                    out[f"{key}/rps"] = _figure(
                        f"{title} {payload}, {name}, c{c}", p["rps"], "req/s", True, peer and f"{peer}/rps"
                    )
                    if c == 32 and p.get("cpu_us_per_request") is not None:
                        out[f"{key}/cpu_us"] = _figure(
                            f"{title} {payload}, {name}, c32, server CPU",
                            p["cpu_us_per_request"],
                            "µs/req",
                            False,
                            peer and f"{peer}/cpu_us",
                        )
    seed = data.get("seed") or {}
    starts: list[tuple[str, str, dict[str, Any]]] = [("seed", "seed capability", seed)]
    starts += [(f"scale{n}", f"{int(n):,} operations", r) for n, r in (data.get("scale") or {}).items()]
    for key, name, entry in starts:
        for stat, word in (("startup_s", "median"), ("startup_worst_s", "worst")):
            if entry.get(stat) is not None:
                out[f"startup/{key}/{stat}"] = _figure(f"Start-up, {name}, {word}", entry[stat], "s", False)
        if entry.get("rss_ready_mb") is not None:
            out[f"rss/{key}/ready"] = _figure(f"RSS when ready, {name}", entry["rss_ready_mb"], "MB", False)
    peak = _get(seed, "serving", "peak_rss_mb")
    if peak is not None:
        out["rss/seed/serving_peak"] = _figure("RSS peak serving the seed (REST + MCP c32)", peak, "MB", False)
    added = _get(data, "stream", "download_naftiko", "added_mb")
    if added is not None:
        mb = _get(data, "settings", "download_mb")
        out[f"rss/download{mb}/added"] = _figure(f"RSS added streaming a {mb} MiB download", added, "MB", False)
    added, _ = _rss_added(mcp, "large", 32)
    if added is not None:
        out["rss/mcp_large_c32/added"] = _figure("RSS added by 1 MB MCP answers at c32", added, "MB", False)
    for name, entry in (data.get("workers") or {}).items():
        for c in (32, 128):
            p = _get(entry, "points", c)
            if p is not None:
                out[f"workers/{name}/c{c}/rps"] = _figure(f"REST small, {name}, c{c}", p["rps"], "req/s", True)
    return out


def _goodness(now: float, before: float, higher_is_better: bool) -> float | None:
    """now against before as a factor where ≥ 1 is better, whichever way the figure points."""
    if not now or not before:
        return None
    return now / before if higher_is_better else before / now


def against_baseline(data: dict[str, Any], baseline: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per headline figure of this run: the baseline's value, this run's, their ratio
    (≥ 1 = better) and, for naftiko's figures, the same ratio divided by its peer's (peer-normalised)."""
    now, before = headline(data), headline(baseline)
    rows = []
    for key, fig in now.items():
        old = before.get(key)
        ratio = _goodness(fig["value"], old["value"], fig["higher_is_better"]) if old else None
        peer_ratio = None
        if ratio is not None and fig["peer"] and fig["peer"] in now and fig["peer"] in before:
            peer = _goodness(now[fig["peer"]]["value"], before[fig["peer"]]["value"], fig["higher_is_better"])
            peer_ratio = ratio / peer if peer else None
        rows.append(
            {
                "key": key,
                "label": fig["label"],
                "unit": fig["unit"],
                "baseline": old["value"] if old else None,
                "now": fig["value"],
                "ratio": ratio,
                "peer_normalised": peer_ratio,
                "worse": any(r is not None and r < WORSE for r in (ratio, peer_ratio)),
            }
        )
    return rows


def _value(x: float | None, unit: str) -> str:
    formats = {"req/s": "{:,.0f}", "µs/req": "{:,.0f}", "s": "{:.3f}", "MB": "{:.1f}"}
    return _num(x, formats.get(unit, "{:.2f}"))


def _flagged(ratio: float | None) -> str:
    if ratio is None:
        return "–"
    return f"**{ratio:.2f}× worse**" if ratio < WORSE else f"{ratio:.2f}×"


def baseline_section(data: dict[str, Any], baseline: dict[str, Any] | None) -> list[str]:
    """The "Against the baseline" section of the report: a table, or why there is none."""
    lines = ["", "## Against the baseline", ""]
    if baseline is None:
        return lines + [
            "No baseline: `bench/results/baseline.json` does not exist. "
            "`bash bench/run.sh --save-baseline` (a full run of every section) writes one from its report.json.",
        ]
    rows = data.get("against_baseline")
    if rows is None:
        rows = against_baseline(data, baseline)
    worse = sum(1 for r in rows if r["worse"])
    lines += [
        f"Baseline: the {baseline.get('mode', '?')} run of {baseline.get('started', '?')}, naftiko "
        f"{_get(baseline, 'versions', 'naftiko_commit') or '?'}, on {_get(baseline, 'machine', 'cpu') or '?'}. "
        f"Ratio ≥ 1 is better whichever way the figure points (req/s: this / baseline; µs, s, MB: "
        f"baseline / this); under {WORSE} it is flagged. Peer-normalised divides naftiko's ratio by its "
        "peer's from the same two runs (REST: nginx proxy_pass; MCP: FastMCP, same era), which cancels "
        "a machine that is faster or slower as a whole. "
        f"{worse} of {len(rows)} figures flagged"
        + (": " + "; ".join(r["label"] for r in rows if r["worse"]) if worse else "")
        + ".",
    ]
    if data.get("mode") != baseline.get("mode"):
        lines += ["", f"Note: this is a {data.get('mode')} run; durations and sizes differ from the baseline's."]
    lines += [
        "",
        "| figure | unit | baseline | this run | ratio (≥ 1 better) | peer-normalised |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['unit']} | {_value(r['baseline'], r['unit'])} | {_value(r['now'], r['unit'])} "
            f"| {_flagged(r['ratio'])} | {_flagged(r['peer_normalised'])} |"
        )
    return lines


# --- markdown ------------------------------------------------------------------------------


def _rps(point: dict[str, Any] | None) -> float | None:
    return point["rps"] if point else None


def _rest_table(rest: dict[str, Any], payload: str) -> list[str]:
    lines = [
        "| target | c | req/s | × floor | × naftiko | × pure proxy | × nginx | p50 ms | p99 ms "
        "| p50 over floor ms | p99 over floor ms | server CPU µs/req | peak RSS MB | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for target, label in REST_TARGETS.items():
        for c in (1, 32, 128):
            p = _point(rest, target, payload, c)
            if p is None:
                continue
            rps = {t: _rps(_point(rest, t, payload, c)) for t in REST_TARGETS}
            d = _point(rest, "direct", payload, c)
            lines.append(
                f"| {label} | {c} | {p['rps']:,.0f} | {_ratio(p['rps'], rps['direct'])} "
                f"| {_ratio(p['rps'], rps['naftiko'])} | {_ratio(p['rps'], rps['pyproxy'])} "
                f"| {_ratio(p['rps'], rps['nginx'])} | {_ms(p['p50_us'])} | {_ms(p['p99_us'])} | "
                f"{_ms(p['p50_us'] - d['p50_us']) if d else '–'} | "
                f"{_ms(p['p99_us'] - d['p99_us']) if d else '–'} | "
                f"{_num(p.get('cpu_us_per_request'))} | {rest[target][payload]['peak_rss_mb']:.1f} "
                f"| {p['errors']} |"
            )
    return lines


def _mcp_table(mcp: dict[str, Any], rest: dict[str, Any] | None, payload: str) -> list[str]:
    lines = [
        "| target | c | req/s | × floor | × naftiko REST | × naftiko MCP modern | × FastMCP (same era) "
        "| × SDK (same era) | p50 ms | p99 ms | server CPU µs/req | peak RSS MB | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for target, label in MCP_TARGETS.items():
        entry = _get(mcp, target, payload)
        if entry is None:
            continue
        if "skipped" in entry:
            lines.append(f"| {label} | – | not run: {entry['skipped'][:120]} | | | | | | | | | | |")
            continue
        era = target.split("-")[1]  # "rest" for naftiko's own REST row: no peer of that era
        for c in (1, 32, 128):
            p = _point(mcp, target, payload, c)
            if p is None:
                continue
            floor = _point(rest, "direct", payload, c)
            nrest = _point(mcp, "naftiko-rest", payload, c) or _point(rest, "naftiko", payload, c)
            nm = _point(mcp, "naftiko-modern", payload, c)
            fm, sd = _point(mcp, f"fastmcp-{era}", payload, c), _point(mcp, f"sdk-{era}", payload, c)
            lines.append(
                f"| {label} | {c} | {p['rps']:,.0f} | {_ratio(p['rps'], _rps(floor))} "
                f"| {_ratio(p['rps'], _rps(nrest))} | {_ratio(p['rps'], _rps(nm))} "
                f"| {_ratio(p['rps'], _rps(fm))} | {_ratio(p['rps'], _rps(sd))} | "
                f"{_ms(p['p50_us'])} | {_ms(p['p99_us'])} | {_num(p.get('cpu_us_per_request'))} | "
                f"{entry.get('peak_rss_mb', 0):.1f} | {p['errors']} |"
            )
    return lines


def _mcp_memory(mcp: dict[str, Any], payload: str) -> list[str]:
    """naftiko's MCP server: idle RSS, then the peak of its c32 runs per target (VmHWM reset per run)."""
    idle = _get(mcp, "naftiko-modern", payload, "rss_idle_mb") or _get(mcp, "naftiko-legacy", payload, "rss_idle_mb")
    peaks = [
        f"{MCP_TARGETS[t]} {peak:.1f} MB"
        for t in ("naftiko-modern", "naftiko-legacy", "naftiko-rest")
        if (peak := _get(mcp, t, payload, "points", 32, "peak_rss_mb")) is not None
    ]
    if idle is None or not peaks:
        return []
    return ["", f"naftiko's server: idle RSS {idle:.1f} MB; peak during its c32 runs: {'; '.join(peaks)}."]


def markdown(data: dict[str, Any], baseline: dict[str, Any] | None = None) -> str:
    """The whole report.md; `baseline` is the reference run's report.json (None: none exists)."""
    m, s = data["machine"], data["settings"]
    lines = [
        f"# naftiko benchmark ({data['mode']} run)",
        "",
        f"Run {data['started']}, {data['elapsed_s'] / 60:.1f} min. Method: `bench/README.md`.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; memory {m['memory_gib']} GiB; kernel {m['kernel']}; "
        f"Python {m['python']}",
        f"- OS: {m['os']}",
        f"- Upstream: {data.get('upstream', '?')}",
        f"- Load: wrk, 1 thread, on the same machine; c1 runs {s['c1_seconds']} s, "
        f"c32/c128 runs {s['load_seconds']} s; median of {s['runs']} run(s) per point after a "
        f"{s['warmup_seconds']} s warm-up. Every server runs as one process (one worker), "
        "except in the workers section.",
        f"- 1-minute load average seen after the runs: {_load_range(data)} "
        "(other programs on the machine add noise; each run's figure is in report.json)",
        "",
        "Versions:",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in data["versions"].items()]
    lines += [
        "",
        f"## Goals (issue {GOALS_ISSUE})",
        "",
        "Each ratio (or added latency) is the median over rounds of that round's ratio: the two "
        "figures of a pair were taken one after the other. The medians of each side are shown beside it.",
        "",
        "| goal | measured | status |",
        "|---|---|---|",
    ]
    lines += [f"| {g['goal']} | {g['measured']} | **{g['status']}** |" for g in data.get("goals", [])]
    lines += baseline_section(data, baseline)
    rest, mcp = data.get("rest"), data.get("mcp")
    for payload in ("small", "large"):
        size = data.get("payload_bytes", {}).get(payload)
        if rest:
            lines += ["", f"## REST, {payload} JSON ({size:,} bytes)", "", *_rest_table(rest, payload)]
    for payload in ("small", "large"):
        size = data.get("payload_bytes", {}).get(payload)
        if mcp:
            lines += [
                "",
                f"## MCP tools/call, {payload} JSON ({size:,} bytes)",
                "",
                "Modern = stateless 2026-07-28 POST with routing headers and `_meta`; legacy = 2025-11-25 after "
                "`initialize` (with the session id when the server mints one). "
                "Floor = the upstream called directly over REST.",
                "",
                *_mcp_table(mcp, rest, payload),
                *_mcp_memory(mcp, payload),
            ]
    if data.get("scale"):
        lines += [
            "",
            "## Scale: generated capabilities (each operation a REST route and an MCP tool)",
            "",
            "Start-up = process start until the REST port answers HTTP. Latency: p50 at c1, median of runs.",
            "",
            "| operations | file KB | start-up s median (runs) | worst s | RSS ready MB | peak RSS MB "
            "| REST first p50 ms | REST last p50 ms | MCP first p50 ms | MCP last p50 ms | REST last p50 × N=20 |",
            "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        base = _get(data, "scale", "20", "rest_last", "p50_us")
        for n, r in data["scale"].items():
            runs = ", ".join(f"{t:.2f}" for t in r["startup_runs_s"])
            lines.append(
                f"| {int(n):,} | {r['file_bytes'] / 1024:,.0f} | {r['startup_s']:.3f} ({runs}) "
                f"| {_num(r.get('startup_worst_s'), '{:.3f}')} "
                f"| {r['rss_ready_mb']:.1f} | {r.get('peak_rss_mb', 0):.1f} "
                f"| {_ms(_get(r, 'rest_first', 'p50_us'))} | {_ms(_get(r, 'rest_last', 'p50_us'))} | "
                f"{_ms(_get(r, 'mcp_first', 'p50_us'))} | {_ms(_get(r, 'mcp_last', 'p50_us'))} | "
                f"{_ratio(_get(r, 'rest_last', 'p50_us'), base)} |"
            )
    seed = data.get("seed")
    if seed:
        sv = seed.get("serving", {})
        lines += [
            "",
            "## Seed capability (capabilities/posthog-task-runs.yaml)",
            "",
            f"- Start-up (base URI 127.0.0.1:9): median {seed['startup_s']:.3f} s, "
            f"worst {_num(seed.get('startup_worst_s'), '{:.3f}')} s, over "
            f"{', '.join(f'{t:.3f}' for t in seed['startup_runs_s'])} s; "
            f"RSS when ready {seed['rss_ready_mb']:.1f} MB.",
            f"- Serving real answers (upstream = the bench nginx): idle {sv.get('rss_idle_mb', 0):.1f} MB; "
            f"peak {sv.get('peak_rss_mb', 0):.1f} MB after REST c32 ({_num(_get(sv, 'rest_c32', 'rps'))} req/s) "
            f"and MCP c32 ({_num(_get(sv, 'mcp_c32', 'rps'))} req/s"
            f"{', ' + sv['mcp_skipped'] if 'mcp_skipped' in sv else ''}).",
        ]
    st = data.get("stream")
    if st:
        e, dd, dn = st["sse"], st["download_direct"], st["download_naftiko"]
        lines += [
            "",
            "## Streaming through the REST adapter",
            "",
            f"Server-sent events: {e['events']} events, one every {e['interval_ms']} ms, "
            "stamped by the upstream; "
            "delay = arrival at the client minus the stamp (CLOCK_MONOTONIC, same machine).",
            "",
            "| path | p50 ms | p99 ms |",
            "|---|---:|---:|",
            f"| direct | {_ms(e['direct_p50_us'])} | {_ms(e['direct_p99_us'])} |",
            f"| through naftiko | {_ms(e['naftiko_p50_us'])} | {_ms(e['naftiko_p99_us'])} |",
            f"| **added by naftiko** | **{_ms(e['added_p50_us'])}** | **{_ms(e['added_p99_us'])}** |",
            "",
            f"Download of {s['download_mb']} MiB (application/octet-stream made on the fly, read by curl): "
            f"direct {dd['mb_per_s']:,.0f} MiB/s; through naftiko {dn['mb_per_s']:,.0f} MiB/s "
            f"({_ratio(dn['mb_per_s'], dd['mb_per_s'])}); naftiko RSS idle {dn['rss_idle_mb']:.1f} MB, peak "
            f"{dn['peak_rss_mb']:.1f} MB (sampled max {dn['rss_max_sampled_mb'] or 0:.1f} MB): "
            f"**+{dn['added_mb']:.1f} MB**.",
        ]
    lines += _workers_table(data.get("workers"))
    prof = data.get("profile")
    if prof:
        lines += [
            "",
            "## Where naftiko spends its time (py-spy under wrk load)",
            "",
            "Own time = samples whose innermost frame is the function; "
            "inclusive = samples with the function anywhere on the stack.",
        ]
        for kind, p in prof.items():
            if "skipped" in p:
                lines += ["", f"{kind.upper()}: not profiled ({p['skipped']})"]
                continue
            lines += [
                "",
                f"### {kind.upper()}, {p.get('payload', 'small')} JSON, c{p.get('concurrency', 32)} "
                f"({p['samples']} samples of a busy thread; idle waits are not sampled)",
                "",
                "| own % | function | file |",
                "|---:|---|---|",
            ]
            lines += [f"| {pct:.1f} | `{fn}` | {file} |" for pct, fn, file in p["own"][:15]]
            lines += ["", "| inclusive % | function (naftiko's own code) | file |", "|---:|---|---|"]
            lines += [f"| {pct:.1f} | `{fn}` | {file} |" for pct, fn, file in p["inclusive_naftiko"][:15]]
    lines += ["", "Raw figures, every run and wrk's latency distributions: `report.json`. Chart: `report.png`.", ""]
    return "\n".join(lines)


# --- profile -------------------------------------------------------------------------------

_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _workers_table(workers: dict[str, Any] | None) -> list[str]:
    """`naftiko serve --workers 1` against `--workers 2` (REST, small JSON), loaded in alternation,
    with wrk pinned to one core and unpinned."""
    if not workers:
        return []
    lines = [
        "",
        "## Workers: naftiko REST (small JSON) with --workers 1 and 2",
        "",
        "Servers and the upstream unpinned; wrk pinned with `taskset` or not. On 2 cores wrk and the "
        "upstream nginx take about a core between them: 2 workers cannot double (`bench/README.md`).",
        "",
        "| wrk | c | 1 worker req/s | 2 workers req/s | 2 / 1 (paired) | CPU µs/request (1, 2) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for suffix in ("-pinned", ""):
        cpus = _get(workers, f"workers-1{suffix}", "wrk_cpus")
        how = f"`taskset -c {cpus}`" if cpus else "unpinned"
        for c in (32, 128):
            one = _get(workers, f"workers-1{suffix}", "points", c)
            two = _get(workers, f"workers-2{suffix}", "points", c)
            if one is None or two is None:
                continue
            cpu = f"{_num(one.get('cpu_us_per_request'))}, {_num(two.get('cpu_us_per_request'))}"
            lines.append(
                f"| {how} | {c} | {_num(one['rps'])} | {_num(two['rps'])} "
                f"| {_num(paired(two, one, 'rps'), '{:.2f}×')} | {cpu} |"
            )
    return lines


def _short(file: str) -> str:
    for marker in ("/site-packages/", "/work/main/", "/lib/python3"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def top_functions(raw: Path) -> dict[str, Any]:
    """Own and inclusive time per function from py-spy's raw output ("f1;f2;...;fn COUNT" lines)."""
    own: collections.Counter[tuple[str, str]] = collections.Counter()
    incl: collections.Counter[tuple[str, str]] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = []
        for frame in stack.split(";"):
            m = _FRAME.match(frame.strip())
            frames.append((m.group("fn"), _short(m.group("file"))) if m else (frame.strip(), ""))
        if frames:
            own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    pct = lambda c: 100 * c / total if total else 0  # noqa: E731
    ours = [
        (pct(c), fn, f)
        for (fn, f), c in incl.most_common()
        if f.startswith(("engine/", "adapters/")) and fn not in ("<module>", "main", "cmd_serve")
    ]
    return {
        "samples": total,
        "own": [(pct(c), fn, f) for (fn, f), c in own.most_common(25)],
        "inclusive_naftiko": ours[:25],
    }


# --- chart ---------------------------------------------------------------------------------


def chart(data: dict[str, Any], path: Path) -> None:
    """Six panels: REST and MCP req/s by concurrency (small, large), scale, and c1 latency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(18, 10))
    m = data["machine"]
    fig.suptitle(
        f"naftiko benchmark ({data['mode']}) — {m['cpu']}, {m['cores']} cores, Python {m['python']}", fontsize=13
    )

    def bars(ax: Any, section: dict[str, Any] | None, targets: dict[str, str], payload: str, title: str) -> None:
        ax.set_title(title)
        shown = [t for t in targets if _point(section, t, payload, 1)]
        if not shown:
            ax.text(0.5, 0.5, "not measured", ha="center")
            return
        width = 0.8 / max(1, len(shown))
        for i, t in enumerate(shown):
            ys = [(_point(section, t, payload, c) or {}).get("rps", 0) for c in (1, 32, 128)]
            ax.bar([x + i * width for x in range(3)], ys, width, label=targets[t])
        ax.set_xticks([x + width * (len(shown) - 1) / 2 for x in range(3)], ["c1", "c32", "c128"])
        ax.set_ylabel("requests/s")
        ax.set_yscale("log")
        ax.legend(fontsize=7)

    bars(axes[0][0], data.get("rest"), REST_TARGETS, "small", "REST, small JSON")
    bars(axes[0][1], data.get("rest"), REST_TARGETS, "large", "REST, 1 MB JSON")
    bars(axes[1][0], data.get("mcp"), MCP_TARGETS, "small", "MCP tools/call, small JSON")
    bars(axes[1][1], data.get("mcp"), MCP_TARGETS, "large", "MCP tools/call, 1 MB JSON")

    ax = axes[0][2]
    ax.set_title("Scale: start-up and RSS by operations")
    scale = data.get("scale")
    if scale:
        ns = [int(n) for n in scale]
        ax.plot(ns, [scale[str(n)]["startup_s"] for n in ns], "o-", label="start-up s")
        ax.axhline(1.5, color="red", ls=":", label="goal 1.5 s (10,000 ops)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("operations")
        ax.set_ylabel("seconds")
        ax2 = ax.twinx()
        ax2.plot(ns, [scale[str(n)]["rss_ready_mb"] for n in ns], "s--", color="gray", label="RSS ready MB")
        ax2.set_ylabel("MB")
        ax.legend(loc="upper left", fontsize=7)
        ax2.legend(loc="lower right", fontsize=7)

    ax = axes[1][2]
    ax.set_title("c1 latency, small JSON (p50 bar, p99 tick)")
    labels, p50, p99 = [], [], []
    for section, targets in ((data.get("rest"), REST_TARGETS), (data.get("mcp"), MCP_TARGETS)):
        for t, label in targets.items():
            p = _point(section, t, "small", 1)
            if p:
                labels.append(label)
                p50.append(p["p50_us"] / 1000)
                p99.append(p["p99_us"] / 1000)
    if labels:
        ax.barh(labels, p50, color="tab:blue")
        ax.scatter(p99, labels, marker="|", s=200, color="black")
        ax.set_xscale("log")
    ax.set_xlabel("ms")
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
