"""The LaTeX table compiles with pdflatex (booktabs), has one caption, a label and grouped headers."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from report_fixtures import fill_text_store, text_jobs, text_report

from harness.report import build_report
from harness.store import Store

DOCUMENT = r"""\documentclass{article}
\usepackage[T1]{fontenc}
\usepackage{booktabs}
\begin{document}
\input{table.tex}
\end{document}
"""


def _table(tmp_path: Path) -> Path:
    store = Store(tmp_path)
    jobs = text_jobs()
    fill_text_store(store, jobs)
    build_report(jobs, text_report(), store, "demo", tmp_path / "out", with_figures=False)
    return tmp_path / "out" / "table.tex"


def test_latex_has_one_caption_a_label_and_grouped_columns(tmp_path: Path) -> None:
    tex = _table(tmp_path).read_text()
    assert tex.count(r"\caption{") == 1 and "Table 2" in tex and tex.count("Table 2") == 1
    assert r"\label{tab:demo}" in tex and r"\usepackage{booktabs}" in tex
    assert r"\multicolumn{2}{c}{VQA score}" in tex and r"\cmidrule(lr){2-3}" in tex
    assert "Text encoder & ours & paper & ours" in tex and "model.text" not in tex
    assert r"\footnotesize Mean $\pm$ std over seeds" in tex  # the legend as a table note


@pytest.mark.skipif(shutil.which("pdflatex") is None and not os.environ.get("CI"),
                    reason="pdflatex is not installed (CI installs texlive-latex-base and -recommended)")
def test_pdflatex_compiles_the_table(tmp_path: Path) -> None:
    table = _table(tmp_path)
    (table.parent / "doc.tex").write_text(DOCUMENT)
    assert shutil.which("pdflatex"), "CI must have pdflatex (see .ci/run)"
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=table.parent,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
    assert (table.parent / "doc.pdf").stat().st_size > 1000
    assert "Unicode character" not in done.stdout and "Missing $" not in done.stdout
