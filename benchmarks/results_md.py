"""Shared by the benchmark scripts: machine facts, percentiles, and writing one section of RESULTS.md.

Each script owns one section between `<!-- begin NAME -->` and `<!-- end NAME -->` markers and replaces
only that section, so the scripts can run in any order and RESULTS.md keeps the latest run of each.
"""

from __future__ import annotations

import os
import platform
import resource
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
HEADER = """# Performance and scale (issue 6)

Every figure is measured against a reference measured in the same run, on the same machine, and the
ratio is the point: the machines are shared, so absolute times move with the load (the load average is
given with each run). Each section is rewritten by the command shown in it.
"""


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()}, {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def table(header: list[str], rows: list[list[object]]) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name: str, title: str, body: str, load_before: str, path: Path = RESULTS) -> None:
    """Replace (or append) the section `name` of RESULTS.md with `body`, headed by how it was produced."""
    command = "python " + " ".join(shlex.quote(arg) for arg in [os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])
    section = (
        f"<!-- begin {name} -->\n## {title}\n\n"
        f"- Command: `{command}`\n- Date: {time.strftime('%Y-%m-%d %H:%M %Z')}\n- Machine: {machine()}\n"
        f"- Load average (1, 5, 15 min) before / after: {load_before} / {load_average()}\n\n"
        f"{body.strip()}\n<!-- end {name} -->\n"
    )
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
