"""Training progress for people: a tqdm bar on a terminal, plain lines in a log file.

A bar redraws itself with carriage returns; in ``log.txt`` that turns a multi-day job into
one endless line. Off a TTY the trainer writes one complete line per interval instead.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class _Stream(Protocol):
    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class LineProgress:
    """tqdm's ``update`` / ``set_postfix`` / ``close``, printed as one line every ``every_s`` seconds."""

    def __init__(self, total: int, initial: int = 0, every_s: float = 30.0, stream: _Stream | None = None,
                 clock: Any = time.monotonic) -> None:
        self.total, self.n, self.every_s = total, initial, every_s
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.start_n, self.start_t = initial, clock()
        self.last_t = self.start_t
        self.postfix = ""

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self.clock()
        if now - self.last_t >= self.every_s:
            self._print(now)

    def set_postfix(self, refresh: bool = False, **values: Any) -> None:
        self.postfix = " ".join(f"{k} {v}" for k, v in values.items())

    def close(self) -> None:
        if self.n > self.start_n:
            self._print(self.clock())

    def _print(self, now: float) -> None:
        self.last_t = now
        elapsed = now - self.start_t
        rate = (self.n - self.start_n) / elapsed if elapsed > 0 else 0.0
        eta = f" eta {_duration((self.total - self.n) / rate)}" if rate > 0 and self.n < self.total else ""
        percent = 100.0 * self.n / self.total if self.total else 100.0
        line = f"step {self.n}/{self.total} ({percent:.0f}%) {self.postfix} {rate:.2f} step/s elapsed " \
               f"{_duration(elapsed)}{eta}"
        print(" ".join(line.split()), file=self.stream, flush=True)


def progress_bar(total: int, initial: int, disable: bool) -> Any:
    """A tqdm bar on a terminal; ``LineProgress`` (one line per 30 s, no carriage returns) otherwise."""
    if disable or not sys.stderr.isatty():
        return LineProgress(total, initial, stream=_Null() if disable else None)
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, mininterval=1.0)


class _Null:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
