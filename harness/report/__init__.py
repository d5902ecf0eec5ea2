"""Reports: tables (Markdown, LaTeX, CSV) and figures from the results store, next to the paper.

``build_report(jobs, report, store, grid_name, out_dir)`` is the entry point (imported lazily).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.report.build import ReportResult, build_report

__all__ = ["ReportResult", "build_report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from harness.report import build

        return getattr(build, name)
    raise AttributeError(f"module 'harness.report' has no attribute '{name}'")
