"""Record a grid's local reference table: run it, report it, write results/reference/local/<grid>.md.

Runs ``harness run GRID`` (local profile) and ``harness report GRID`` as child processes into a fresh
results root, measuring what a user needs to compare their own run against: wall time, the CPU time
of the dispatcher and every job (``RUSAGE_CHILDREN``, much less sensitive to a shared machine than
wall time), the load average sampled every 15 s, the commit (and whether the tree was clean) and the
library versions. The file is the report's ``table.md`` under a header with those facts.

    python benches/record_local_reference.py grids/main.yaml [--results /tmp/ref] [--out DIR]

The wall time includes building any tiny-zoo entry the grid needs that $HARNESS_CACHE does not hold yet
(the run prints "tiny zoo: ready (N s)"); build the zoo first (`harness zoo build`) to time the grid alone.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

from harness.train.record import git_state, versions  # what every run records, here for the whole grid

REPO = Path(__file__).resolve().parent.parent


def _cpu_seconds() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime, usage.ru_stime


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _mem_gib() -> int:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return round(pages / 2**30)


def _commit() -> str:
    commit, dirty = git_state(REPO)
    if commit is None:
        return "unknown (not a git checkout)"
    return commit[:7] + (" (uncommitted changes)" if dirty else " (clean tree)")


class LoadSampler(threading.Thread):
    """The 1-minute load average every ``interval`` seconds while a run lasts."""

    def __init__(self, interval: float = 15.0) -> None:
        super().__init__(daemon=True)
        self.interval, self.samples, self._done = interval, [os.getloadavg()[0]], threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.interval):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> str:
        self._done.set()
        self.samples.append(os.getloadavg()[0])
        return f"load average (1 min) {min(self.samples):.1f}-{max(self.samples):.1f} over the run"


def _timed(cmd: list[str]) -> tuple[float, float, float]:
    """(wall, user, sys) seconds of one child command; exits with its code when it fails."""
    user0, sys0 = _cpu_seconds()
    start = time.monotonic()
    code = subprocess.run(cmd, cwd=REPO).returncode
    wall = time.monotonic() - start
    user1, sys1 = _cpu_seconds()
    if code != 0:
        sys.exit(f"{shlex.join(cmd)} exited with {code}")
    return wall, user1 - user0, sys1 - sys0


def _versions() -> str:
    return ", ".join(f"{package} {v}" for package, v in versions().items() if package != "meter-harness")


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("grid", type=Path)
    parser.add_argument("--results", type=Path, help="fresh results root (default: /tmp/ref-<grid>)")
    parser.add_argument("--out", type=Path, default=REPO / "results/reference/local")
    args = parser.parse_args(argv)
    name = args.grid.stem
    results = args.results or Path(f"/tmp/ref-{name}")
    harness = [sys.executable, "-m", "harness"]
    sampler = LoadSampler()
    sampler.start()
    started = datetime.datetime.now(datetime.timezone.utc)
    wall, user, system = _timed([*harness, "run", str(args.grid), "--results", str(results)])
    load = sampler.stop()
    _timed([*harness, "report", str(args.grid), "--results", str(results)])
    table = (results / "reports" / name / "table.md").read_text()
    header = [
        f"# Local reference: {name} (local profile)",
        "",
        f"- command: `harness run {args.grid} --results {results}` then `harness report` (recorded with "
        f"`python benches/record_local_reference.py {args.grid}`)",
        f"- machine: {os.cpu_count()} CPU cores ({_cpu_model()}), {_mem_gib()} GiB RAM, no GPU",
        f"- load: {load}",
        f"- wall time: {_minutes(wall)} ({wall:.0f} s; CPU {user:.0f} s user + {system:.0f} s system, dispatcher "
        "and all jobs)",
        f"- commit: {_commit()}",
        f"- versions: {_versions()}",
        f"- date: {started:%Y-%m-%dT%H:%MZ}",
        "",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"{name}.md"
    out.write_text("\n".join(header) + "\n" + table)
    print(f"wrote {out}: {_minutes(wall)} wall, {user + system:.0f} CPU s, {load}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
