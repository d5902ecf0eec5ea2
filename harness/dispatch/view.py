"""The plain-text view shared by ``harness run`` and ``harness status``: job labels, durations,
steps and metrics as text, tables, and the live ``ProgressView`` of a local run. Torch-free.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.spec.schema import JobSpec



def fmt_duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "-"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def fmt_factors(factors: Mapping[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in factors.items()) or "-"


def fmt_step(step: int | None, total: int | None) -> str:
    if step is None:
        return "-"
    return f"{step}/{total}" if total else str(step)


def fmt_metric(metrics: Mapping[str, Any]) -> str:
    """The last metric a job reported, e.g. ``val/vqa_score=0.412`` (a loss only when nothing else)."""
    numeric = [(k, v) for k, v in metrics.items() if isinstance(v, (int, float))]
    if not numeric:
        return "-"
    scores = [(k, v) for k, v in numeric if not k.endswith("loss")]
    key, value = (scores or numeric)[-1]
    return f"{key}={value:.4g}"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned plain-text table."""
    rows = [list(map(str, r)) for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)




def job_label(job: JobSpec) -> str:
    """``pretrain`` or ``finetune:vqa``, then the factor levels and seed."""
    stage = job.stage if job.task is None else f"{job.stage}:{job.task}"
    return f"{stage} {fmt_factors(job.factors)} seed={job.seed}"


class ProgressView:
    """Live lines for running jobs, redrawn in place on a terminal; plain log lines otherwise.

    Events (started, done, failed) are permanent lines; on a terminal the block of running
    jobs below them is redrawn about every ``refresh_s``. Off a terminal, a job's progress
    line is printed again only when its step moved and ``plain_every_s`` passed.
    """

    def __init__(self, stream: Any, *, refresh_s: float = 1.0, plain_every_s: float = 10.0) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.refresh_s, self.plain_every_s = refresh_s, plain_every_s
        self.drawn = 0
        self.last_draw = 0.0
        self.last_plain: dict[str, tuple[float, Any]] = {}

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def _clear(self) -> None:
        if self.tty and self.drawn:
            self._write(f"\x1b[{self.drawn}F\x1b[J")
        self.drawn = 0

    def start(self, jobs: int, workers: int) -> None:
        self._write(f"running {jobs} job(s), {workers} at a time (Ctrl-C stops them and keeps finished results)\n")

    def note(self, text: str) -> None:
        self._clear()
        self._write(text + "\n")

    def event(self, job: JobSpec, state: str, detail: str = "") -> None:
        self._clear()
        stamp = time.strftime("%H:%M:%S")
        tail = f"  ({detail})" if detail else ""
        self._write(f"[{stamp}] {state:<9} {job.short_id}  {job_label(job)}{tail}\n")
        self.last_draw = 0.0

    def line(self, job: JobSpec, progress: Mapping[str, Any]) -> str:
        loss = progress.get("loss")
        loss_text = f"{loss:.4f}" if isinstance(loss, (int, float)) else "-"
        if progress.get("step") is None:
            return f"  {job.short_id}  {job_label(job)}  starting"
        step = fmt_step(progress.get("step"), progress.get("total"))
        eta = fmt_duration(progress.get("eta_s"))
        return f"  {job.short_id}  {job_label(job)}  step {step}  loss {loss_text}  ETA {eta}"

    def draw(self, running: Sequence[tuple[JobSpec, Mapping[str, Any]]], tally: str = "") -> None:
        now = time.monotonic()
        if now - self.last_draw < self.refresh_s:
            return
        self.last_draw = now
        if self.tty:
            self._clear()
            lines = [self.line(job, progress) for job, progress in running]
            lines += [f"  [{tally}]"] if tally else []
            if lines:
                self._write("\n".join(lines) + "\n")
            self.drawn = len(lines)
            return
        for job, progress in running:
            seen = self.last_plain.get(job.run_id)
            step = progress.get("step")
            if step is not None and (seen is None or (seen[1] != step and now - seen[0] >= self.plain_every_s)):
                self.last_plain[job.run_id] = (now, step)
                self._write(self.line(job, progress).lstrip() + "\n")

    def close(self) -> None:
        self._clear()

