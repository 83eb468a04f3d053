"""The pure parts of bench/report.py: goals, the baseline comparison, the memory figure.

Not collected by `python -m pytest` (testpaths = tests); run `python -m pytest bench/test_report.py`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report  # noqa: E402


def point(rps: float, cpu: float | None = None, runs: list[float] | None = None, **extra: Any) -> dict[str, Any]:
    """A summarised wrk point; `runs` gives the per-round req/s (the goals pair rounds)."""
    p: dict[str, Any] = {"rps": rps, "p50_us": 100.0, "p99_us": 200.0, "errors": 0, **extra}
    if cpu is not None:
        p["cpu_us_per_request"] = cpu
    if runs is not None:
        p["runs"] = [{"rps": r} for r in runs]
    return p


def run(scale: float = 1.0, naftiko: float = 1.0) -> dict[str, Any]:
    """A small synthetic report.json: `scale` speeds the whole machine, `naftiko` naftiko alone."""
    nk, peer = 10_000 * scale * naftiko, 20_000 * scale
    return {
        "mode": "full",
        "started": "then",
        "settings": {"download_mb": 1024},
        "machine": {"cpu": "test"},
        "versions": {"naftiko_commit": "abc"},
        "rest": {
            "naftiko": {"small": {"points": {"32": point(nk, 50 / naftiko / scale)}}},
            "nginx": {"small": {"points": {"32": point(peer, 20 / scale)}}},
        },
        "mcp": {
            "naftiko-modern": {
                "large": {"rss_idle_mb": 40.0, "points": {"32": point(100, peak_rss_mb=90.0)}},
                "small": {"points": {"32": point(nk)}},
            },
            "naftiko-legacy": {"large": {"rss_idle_mb": 40.0, "points": {"32": point(90, peak_rss_mb=150.0)}}},
            "fastmcp-modern": {"small": {"points": {"32": point(nk / 25)}}},
        },
        "seed": {"startup_s": 0.2, "startup_worst_s": 0.35, "startup_runs_s": [0.2, 0.35, 0.19]},
    }


def by_goal(goals: list[dict[str, Any]], start: str) -> dict[str, Any]:
    return next(g for g in goals if g["goal"].startswith(start))


def test_goals_pass_fail_and_not_measured() -> None:
    goals = report.goals(run())
    assert by_goal(goals, "REST server CPU per request")["status"] == "PASS"  # 50 µs ≤ 60
    assert by_goal(goals, "REST throughput at c32 ≥ 0.4× nginx")["status"] == "PASS"  # 0.5×
    assert by_goal(goals, "MCP modern tools/call at c32 ≥ 20× FastMCP")["status"] == "PASS"  # 25×
    assert by_goal(goals, "MCP modern tools/call at c32 ≥ 6× the SDK")["status"] == "n/a"
    # the seed passes on its median (0.2 s) but the goal is on the worst start (0.35 s)
    seed = by_goal(goals, "Start-up < 0.3 s for the seed")
    assert seed["status"] == "FAIL" and seed["value"] == 0.35
    assert by_goal(goals, "Start-up < 1.5 s for 10,000")["status"] == "n/a"


def test_mcp_large_memory_is_the_worse_era_peak_minus_idle() -> None:
    goal = by_goal(report.goals(run()), "A 1 MB MCP answer at c32 adds")
    assert goal["value"] == 110.0 and goal["status"] == "FAIL"
    assert "legacy" in goal["measured"]


def test_ratio_goals_pair_rounds() -> None:
    data = run()
    # round by round 0.5 and 0.5, while the medians alone would say 12,000 / 20,000 = 0.6
    data["rest"]["naftiko"]["small"]["points"]["32"] = point(12_000, 50, runs=[5_000, 12_000, 15_000])
    data["rest"]["nginx"]["small"]["points"]["32"] = point(20_000, 20, runs=[10_000, 24_000, 30_000])
    assert by_goal(report.goals(data), "REST throughput at c32")["value"] == 0.5


def test_against_baseline_flags_worse_both_ways() -> None:
    rows = {r["key"]: r for r in report.against_baseline(run(naftiko=0.5), run())}
    rps = rows["rest/small/naftiko/c32/rps"]
    assert rps["ratio"] == 0.5 and rps["worse"]
    cpu = rows["rest/small/naftiko/c32/cpu_us"]  # 100 µs now against 50: a cost, so 0.5 is worse too
    assert cpu["ratio"] == 0.5 and cpu["worse"]
    assert rows["rest/small/nginx/c32/rps"]["ratio"] == 1.0 and not rows["rest/small/nginx/c32/rps"]["worse"]
    assert rows["startup/seed/startup_worst_s"]["ratio"] == 1.0


def test_peer_normalised_cancels_a_slower_machine() -> None:
    rows = {r["key"]: r for r in report.against_baseline(run(scale=0.5), run())}
    rps = rows["rest/small/naftiko/c32/rps"]
    assert rps["ratio"] == 0.5 and rps["peer_normalised"] == 1.0
    assert rows["rest/small/naftiko/c32/cpu_us"]["peer_normalised"] == 1.0
    assert rows["mcp/small/naftiko-modern/c32/rps"]["peer_normalised"] == 1.0
    assert rows["mcp/large/naftiko-modern/c32/rps"]["peer_normalised"] is None  # no FastMCP large here


def test_figure_missing_from_the_baseline_is_shown_not_flagged() -> None:
    before = run()
    del before["rest"]["nginx"]
    rows = {r["key"]: r for r in report.against_baseline(run(), before)}
    assert rows["rest/small/nginx/c32/rps"]["baseline"] is None and not rows["rest/small/nginx/c32/rps"]["worse"]
    assert rows["rest/small/naftiko/c32/rps"]["peer_normalised"] is None


def test_baseline_section_without_a_baseline_says_so() -> None:
    text = "\n".join(report.baseline_section(run(), None))
    assert "No baseline" in text and "--save-baseline" in text
    text = "\n".join(report.baseline_section(run(naftiko=0.5), run()))
    assert "**0.50× worse**" in text
    assert "figures flagged: REST small, naftiko REST, c32;" in text


def test_mcp_memory_line_names_idle_and_each_peak() -> None:
    line = "".join(report._mcp_memory(run()["mcp"], "large"))
    assert "idle RSS 40.0 MB" in line and "naftiko MCP, legacy 150.0 MB" in line
    assert report._mcp_memory(run()["mcp"], "small") == []  # no idle RSS recorded there


def test_only_a_full_run_of_every_section_becomes_the_baseline(tmp_path: Path, monkeypatch: Any) -> None:
    import json

    import pytest
    import run as bench_run

    monkeypatch.setattr(bench_run, "RESULTS", tmp_path)
    monkeypatch.setattr(bench_run, "BASELINE", tmp_path / "baseline.json")
    assert bench_run.load_baseline() is None
    data: dict[str, Any] = {"mode": "full", **{section: {} for section in bench_run.SECTIONS}}
    for refused in ({**data, "mode": "quick"}, {k: v for k, v in data.items() if k != "stream"}):
        (tmp_path / "report.json").write_text(json.dumps(refused))
        with pytest.raises(SystemExit):
            bench_run.save_baseline(refused)
        assert not (tmp_path / "baseline.json").exists()
    (tmp_path / "report.json").write_text(json.dumps(data))
    bench_run.save_baseline(data)
    assert json.loads((tmp_path / "baseline.json").read_text()) == data
    assert bench_run.load_baseline() == data
