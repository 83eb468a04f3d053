"""Time the HTML and Markdown decoders on typical and hostile 1 MB bodies.

The decoders are hand-written because the libraries that are their reference are slow on some
inputs (README, design notes); this keeps the figures behind that choice reproducible. Run it
with the tree to measure importable as `naftiko`, e.g. for the working tree
`python bench/formats.py`, and for another revision put a folder holding a `naftiko` link to
that checkout first on PYTHONPATH. Prints one line per case: best and median of N runs, seconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

MB = 1 << 20


def _fill(unit: str, size: int = MB) -> str:
    return unit * (size // len(unit))


def _readme() -> str:
    part = (
        '# Project title\n\nSome *emphasis*, a [link](https://example.com/x "t"), `code` and **strong**'
        " text that runs on for a while so the paragraph is of a usual length.\n\n"
        "- item one with [ref][r]\n- item two\n  continued\n\n> a quote\n> over two lines\n\n"
        "```python\nprint('x')\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n\n"
        "Heading\n-------\n\n1. first\n2. second\n\n[r]: https://example.com/r\n\n"
    )
    return _fill(part)


def _table(rows: int) -> str:
    head = "<table><thead><tr><th>id</th><th>name</th><th>note</th></tr></thead><tbody>"
    body = "".join(f"<tr><td>{i}</td><td><b>name {i}</b></td><td>a &amp; b\n c</td></tr>" for i in range(rows))
    return head + body + "</tbody></table>"


MARKDOWN: dict[str, Callable[[], str]] = {
    "README-like": _readme,
    "many paragraphs": lambda: _fill("word word word\n\n"),
    "[a]( repeated": lambda: _fill("[a]("),
    "[ repeated": lambda: _fill("["),
    "![a repeated": lambda: _fill("![a"),
    "* and _ runs": lambda: _fill("*a _b "),
    "backtick runs": lambda: _fill("`a ``b "),
    "< repeated": lambda: _fill("<"),
    "> nested quotes": lambda: _fill(">" * 100 + " a\n"),
    "- nested lists": lambda: "".join("  " * i + "- a\n" for i in range(1000)) * 10,
    "pipe table rows": lambda: "| a | b |\n|---|---|\n" + _fill("| 1 | 2 |\n"),
}

HTML: dict[str, Callable[[], str]] = {
    "table 1 MB": lambda: _table(MB // 70),
    "<a repeated": lambda: _fill("<a"),
    "unmatched end tags": lambda: _fill("</b>"),
    "nested <div>": lambda: "<div>" * (MB // 10) + "<table><tr><th>x</th></tr></table>",
    "many tables": lambda: _fill("<table><tr><th>h</th></tr><tr><td>v</td></tr></table>"),
    "table in cell": lambda: _fill("<table><tr><th>h</th></tr><tr><td><table><tr><td>x"),
}


def _time(fn: Callable[[], object], runs: int) -> str:
    took = []
    for _ in range(runs):
        start = time.perf_counter()
        try:
            fn()
        except ValueError as exc:  # FormatError: a limit refused the body, which is an answer too
            return f"refused in {time.perf_counter() - start:6.3f} s: {str(exc)[:60]}"
        took.append(time.perf_counter() - start)
    return f"best {min(took):6.3f} s  median {statistics.median(took):6.3f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from naftiko.engine.formats import decoder_for

    print(f"# naftiko from {Path(sys.modules['naftiko'].__file__ or '').parent}", flush=True)
    for label, cases in (("markdown", MARKDOWN), ("html", HTML)):
        decode = decoder_for(label, max_items=10**9)
        for name, make in cases.items():
            body = make()
            took = _time(partial(decode, body), args.runs)
            print(f"{label:8} {name:20} {len(body) / MB:5.2f} MB  {took}", flush=True)


if __name__ == "__main__":
    main()
