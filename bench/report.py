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


def goals(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 5's goals, each with the measured figure and PASS/FAIL (n/a when not measured)."""
    rest, mcp = data.get("rest"), data.get("mcp")
    out: list[dict[str, Any]] = []

    def add(goal: str, value: float | None, ok: Callable[[float], bool], shown: str) -> None:
        status = "n/a" if value is None else ("PASS" if ok(value) else "FAIL")
        out.append(
            {"goal": goal, "value": value, "measured": shown if value is not None else "not measured", "status": status}
        )

    nk32, pp32 = _point(rest, "naftiko", "small", 32), _point(rest, "pyproxy", "small", 32)
    v = paired(nk32, pp32, "rps")
    add(
        "REST throughput at c32 ≥ 0.8× the pure Python proxy (small JSON)",
        v,
        lambda x: x >= 0.8,
        f"{_num(v, '{:.2f}')}× (medians {_num(nk32 and nk32['rps'])} vs {_num(pp32 and pp32['rps'])} req/s)",
    )
    nk1, d1 = _point(rest, "naftiko", "small", 1), _point(rest, "direct", "small", 1)
    for pct, limit in (("p50", 300), ("p99", 1000)):
        v = paired(nk1, d1, f"{pct}_us", lambda x, y: x - y)
        add(
            f"REST added latency at c1 over direct, {pct} < {limit / 1000:g} ms (small JSON)",
            v,
            lambda x, bound=limit: x < bound,
            f"{_ms(v)} ms (medians: naftiko {_ms(nk1 and nk1[f'{pct}_us'])} ms, "
            f"direct {_ms(d1 and d1[f'{pct}_us'])} ms)",
        )
    nm = _point(mcp, "naftiko-modern", "small", 32)
    for peer, label in (("fastmcp-modern", "FastMCP from_openapi"), ("sdk-modern", "the SDK server")):
        pm = _point(mcp, peer, "small", 32)
        v = paired(nm, pm, "rps")
        add(
            f"MCP tools/call throughput at c32 ≥ 4× {label} (modern era, small JSON)",
            v,
            lambda x: x >= 4,
            f"{_num(v, '{:.2f}')}× (medians {_num(nm and nm['rps'])} vs {_num(pm and pm['rps'])} req/s)",
        )
    nr = _point(mcp, "naftiko-rest", "small", 32) or nk32  # measured in the MCP rounds when there
    v = paired(nm, nr, "rps")
    add(
        "MCP tools/call throughput at c32 ≥ 0.7× our REST adapter (small JSON)",
        v,
        lambda x: x >= 0.7,
        f"{_num(v, '{:.2f}')}× (medians {_num(nm and nm['rps'])} vs {_num(nr and nr['rps'])} req/s)",
    )
    seed = data.get("seed") or {}
    v = seed.get("startup_s")
    add("Start-up < 0.5 s for the seed capability", v, lambda x: x < 0.5, f"{_num(v, '{:.3f}')} s")
    v = _get(data, "scale", "10000", "startup_s")
    add("Start-up < 3 s for 10,000 operations", v, lambda x: x < 3, f"{_num(v, '{:.2f}')} s")
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
    add("RSS < 80 MB serving the seed (peak under REST and MCP load)", v, lambda x: x < 80, f"{_num(v, '{:.1f}')} MB")
    dl = _get(data, "stream", "download_naftiko")
    v = dl["added_mb"] if dl else None
    mb = _get(data, "settings", "download_mb")
    add(
        f"Streaming a {mb} MiB download adds < 20 MB RSS",
        v,
        lambda x: x < 20,
        f"{_num(v, '{:.1f}')} MB (idle {_num(dl and dl['rss_idle_mb'], '{:.1f}')} MB, "
        f"peak {_num(dl and dl['peak_rss_mb'], '{:.1f}')} MB)",
    )
    return out


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


def markdown(data: dict[str, Any]) -> str:
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
        f"{s['warmup_seconds']} s warm-up. Every server runs as one process (one worker).",
        f"- 1-minute load average seen after the runs: {_load_range(data)} "
        "(other programs on the machine add noise; each run's figure is in report.json)",
        "",
        "Versions:",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in data["versions"].items()]
    lines += [
        "",
        "## Goals (issue 5)",
        "",
        "Each ratio (or added latency) is the median over rounds of that round's ratio: the two "
        "figures of a pair were taken one after the other. The medians of each side are shown beside it.",
        "",
        "| goal | measured | status |",
        "|---|---|---|",
    ]
    lines += [f"| {g['goal']} | {g['measured']} | **{g['status']}** |" for g in data.get("goals", [])]
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
            ]
    if data.get("scale"):
        lines += [
            "",
            "## Scale: generated capabilities (each operation a REST route and an MCP tool)",
            "",
            "Start-up = process start until the REST port answers HTTP. Latency: p50 at c1, median of runs.",
            "",
            "| operations | file KB | start-up s (runs) | RSS ready MB | peak RSS MB | REST first p50 ms "
            "| REST last p50 ms | MCP first p50 ms | MCP last p50 ms | REST last p50 × N=20 |",
            "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        base = _get(data, "scale", "20", "rest_last", "p50_us")
        for n, r in data["scale"].items():
            runs = ", ".join(f"{t:.2f}" for t in r["startup_runs_s"])
            lines.append(
                f"| {int(n):,} | {r['file_bytes'] / 1024:,.0f} | {r['startup_s']:.3f} ({runs}) "
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
            f"- Start-up (base URI 127.0.0.1:9): median {seed['startup_s']:.3f} s over "
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
    """`naftiko serve --workers 1` against `--workers 2` (REST, small JSON), loaded in alternation."""
    if not workers:
        return []
    lines = [
        "",
        "## Workers: naftiko REST (small JSON) with --workers 1 and 2",
        "",
        "| c | 1 worker req/s | 2 workers req/s | 2 / 1 | CPU us/request (1, 2) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for c in (32, 128):
        one, two = _get(workers, "workers-1", "points", c), _get(workers, "workers-2", "points", c)
        if one is None or two is None:
            continue
        cpu = f"{_num(one.get('cpu_us_per_request'))}, {_num(two.get('cpu_us_per_request'))}"
        lines.append(f"| {c} | {_num(one['rps'])} | {_num(two['rps'])} | {_ratio(two['rps'], one['rps'])} | {cpu} |")
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
        ax.axhline(3, color="red", ls=":", label="goal 3 s (10,000 ops)")
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
