"""Progress for people: a tqdm bar on a terminal, plain lines in a log file.

A bar redraws itself with carriage returns; in ``log.txt`` or redirected output that turns a
multi-day job into one endless line. Off a TTY (the trainer, the tiny-zoo build) progress is one
complete line per interval instead. Every progress display goes through ``progress_bar``.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol


class Stream(Protocol):
    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class LineProgress:
    """tqdm's ``update`` / ``set_postfix`` / ``set_description`` / ``close`` (and ``with``), printed as
    one line every ``every_s`` seconds."""

    def __init__(self, total: int, initial: int = 0, every_s: float = 30.0, stream: Stream | None = None,
                 clock: Any = time.monotonic, desc: str = "", unit: str = "step") -> None:
        self.total, self.n, self.every_s, self.desc, self.unit = total, initial, every_s, desc, unit
        self.stream: Stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.start_n, self.start_t = initial, clock()
        self.last_t, self.printed_n = self.start_t, initial
        self.postfix = ""

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self.clock()
        if now - self.last_t >= self.every_s:
            self._print(now)

    def set_postfix(self, refresh: bool = False, **values: Any) -> None:
        self.postfix = " ".join(f"{k} {v}" for k, v in values.items())

    def set_description(self, desc: str, refresh: bool = False) -> None:
        """A new phase (e.g. the next zoo entry): the finished one gets its closing line first."""
        if self.n > self.printed_n:
            self._print(self.clock())
        self.desc = desc

    def close(self) -> None:
        if self.n > self.printed_n:  # closing twice (``with`` and an explicit close) prints once
            self._print(self.clock())

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _print(self, now: float) -> None:
        self.last_t, self.printed_n = now, self.n
        elapsed = now - self.start_t
        rate = (self.n - self.start_n) / elapsed if elapsed > 0 else 0.0
        eta = f" eta {_duration((self.total - self.n) / rate)}" if rate > 0 and self.n < self.total else ""
        percent = 100.0 * self.n / self.total if self.total else 100.0
        prefix = f"{self.desc}: " if self.desc else ""
        line = f"{prefix}{self.unit} {self.n}/{self.total} ({percent:.0f}%) {self.postfix} {rate:.2f} " \
               f"{self.unit}/s elapsed {_duration(elapsed)}{eta}"
        print(" ".join(line.split()), file=self.stream, flush=True)


def progress_bar(total: int, initial: int = 0, *, disable: bool = False, desc: str = "", unit: str = "step",
                 every_s: float = 30.0) -> Any:
    """A tqdm bar on a terminal; ``LineProgress`` (one line per ``every_s``, no carriage returns)
    when stderr is a file or a pipe; nothing when ``disable``."""
    if disable or not sys.stderr.isatty():
        return LineProgress(total, initial, every_s, stream=_Null() if disable else None, desc=desc, unit=unit)
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc or None, unit=unit, dynamic_ncols=True, mininterval=1.0)


class _Null:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
