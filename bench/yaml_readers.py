"""The YAML readers a capability file could be read with, measured side by side (issue 13).

    .venv/bin/python bench/yaml_readers.py [N] [ROUNDS]

Generates the N-operation file of bench/gen_scale.py (default 10,000) and reads it, and the seed
capability, with each reader in one process, alternating, ROUNDS times (default 5): best and
median seconds, peak traced memory (tracemalloc, a separate run), and whether the reader gives
what the loader needs (values plus the line and column of every mapping key, mapping value and
sequence item). `engine.spec.loader.load` of the big file is timed the same way, for reference.
"""

from __future__ import annotations

import gc
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from gen_scale import capability  # noqa: E402 (found through the sys.path insert above, as `engine` is)

SEED = ROOT / "capabilities" / "posthog-task-runs.yaml"


def blockyaml_reader(text: str) -> Any:
    from naftiko.engine.spec import blockyaml

    return blockyaml.load(text)


def ruamel_rt_pure(text: str) -> Any:
    return YAML(typ="rt", pure=True).load(text)


def ruamel_safe_c(text: str) -> Any:
    return YAML(typ="safe").load(text)  # uses ruamel.yaml.clib's CParser when installed


def pyyaml_compose(text: str) -> Any:
    return yaml.compose(text, Loader=yaml.CSafeLoader)


def pyyaml_events_only(text: str) -> Any:
    loader = yaml.CBaseLoader(text)
    try:
        count, end = 0, yaml.StreamEndEvent
        while type(loader.get_event()) is not end:
            count += 1
        return count
    finally:
        loader.dispose()


def yamlread_reader(text: str) -> Any:
    import yamlread_candidate

    return yamlread_candidate.load(text)


def reading_parse(text: str) -> Any:
    from naftiko.engine.spec import reading

    return reading.parse_yaml(text, "bench.yaml")


def has_positions(value: Any) -> bool:
    """Whether the loader can read key, value and item positions from what a reader returned."""
    if hasattr(value, "lc") and isinstance(value, dict):
        key = next(iter(value))
        return value.lc.key(key) is not None and value.lc.value(key) is not None
    if isinstance(value, yaml.MappingNode):
        return all(k.start_mark is not None and v.start_mark is not None for k, v in value.value)
    return False


def timed(read: Callable[[str], Any], text: str) -> float:
    gc.collect()
    start = time.perf_counter()
    read(text)
    return time.perf_counter() - start


def peak(read: Callable[[str], Any], text: str) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        result = read(text)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        del result


def main(n: int = 10_000, rounds: int = 5) -> None:
    big = capability(n)
    readers: dict[str, Callable[[str], Any]] = {
        "blockyaml": blockyaml_reader,
        "libyaml events + position builder": yamlread_reader,
        "reading.parse_yaml": reading_parse,
        "libyaml events only": pyyaml_events_only,
        "yaml.compose CSafeLoader": pyyaml_compose,
        "ruamel safe (C)": ruamel_safe_c,
        "ruamel rt pure": ruamel_rt_pure,
    }
    files = {"seed": SEED.read_text(), f"{n} ops": big}
    for label, text in files.items():
        print(f"\n{label}: {len(text.encode()):,} bytes, {text.count(chr(10)):,} lines")
        chosen = dict(readers)
        if len(text) > 2_000_000:  # ruamel rt pure takes about a minute here; one run is enough to show it
            slow = chosen.pop("ruamel rt pure")
        times: dict[str, list[float]] = {name: [] for name in chosen}
        for _ in range(rounds):
            for name, read in chosen.items():
                times[name].append(timed(read, text))
        if len(text) > 2_000_000:
            chosen["ruamel rt pure"] = slow
            times["ruamel rt pure"] = [timed(slow, text)]
        print(f"{'reader':40} {'best s':>8} {'median s':>9} {'peak MB':>8}  positions")
        for name, read in chosen.items():
            mb = peak(read, text) / 1e6 if name != "ruamel rt pure" or len(text) < 2_000_000 else float("nan")
            sample = read(files["seed"])
            print(
                f"{name:40} {min(times[name]):8.3f} {statistics.median(times[name]):9.3f} {mb:8.1f}  "
                f"{has_positions(sample) if not isinstance(sample, int) else '-'}"
            )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "scale.yaml")
        path.write_text(big)
        from naftiko.engine.spec import loader

        runs = [timed(lambda _: loader.load([path]), "") for _ in range(3)]
        print(f"\nengine.spec.loader.load({n} ops): best {min(runs):.3f} s, median {statistics.median(runs):.3f} s")


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:3]))
