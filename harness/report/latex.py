"""The LaTeX table of a report: booktabs rules, one caption, ``\\label{tab:<grid>}``, ours / paper / Δ
grouped under each metric, and the legend as a table note.

Needs ``\\usepackage{booktabs}`` in the document's preamble (said in the file's first lines).
"""

from __future__ import annotations

from itertools import groupby

from harness.report.cells import Cell
from harness.report.render import ALL_ROW, baseline_rows, header_columns, legend_lines, row_values, status_text
from harness.report.table import ReportTable

_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                # Characters the report's own text uses that pdflatex's default fonts do not have.
                "±": r"$\pm$", "≈": r"$\approx$", "Δ": r"$\Delta$", "×": r"$\times$", "−": "--", "τ": r"$\tau$",
                "≥": r"$\geq$", "≤": r"$\leq$", "α": r"$\alpha$", "◆": r"$\diamond$", "–": "--",
                "<": r"$<$", ">": r"$>$", "|": r"$|$"}
SUBHEADS = {"value": "ours", "paper": "paper", "delta": r"$\Delta$"}


def tex_escape(text: str) -> str:
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in text)


def _tex_value(cell: Cell) -> str:
    if cell.mean is None:
        return r"\textit{" + tex_escape(status_text(cell)) + "}"
    number = f"{cell.mean:.2f}" + (rf"$\pm${cell.std:.2f}" if cell.std is not None else "")
    number = rf"\textbf{{{number}}}" if cell.best else number
    near = r"$^{\approx}$" if cell.near_best else ""
    partial = "" if cell.n == len(cell.expected) else rf"\,({cell.n}/{len(cell.expected)})"
    return number + near + partial


def caption(table: ReportTable) -> str:
    """The title, and the paper's table only when the title does not already name it."""
    spec = table.spec
    title = spec.title or table.grid
    if spec.paper and spec.paper.lower() not in title.lower():
        title += f" (METER {spec.paper})"
    return tex_escape(title)


def _group_header(table: ReportTable, columns: list[tuple[str, str, str]]) -> list[str]:
    """The metric row (one \\multicolumn per metric and column group), its \\cmidrules, and the sub-heads."""
    titles = {m.name: m for m in table.metrics}
    top, rules, start = [""], [], 2
    for (column, metric), members in groupby(columns, key=lambda c: (c[0], c[1])):
        width = len(list(members))
        top.append(rf"\multicolumn{{{width}}}{{c}}{{{tex_escape(table.title_of(titles[metric], column))}}}")
        rules.append(rf"\cmidrule(lr){{{start}-{start + width - 1}}}")
        start += width
    sub = [tex_escape(table.row_title)] + [SUBHEADS[kind] for _, _, kind in columns]
    return [" & ".join(top) + r" \\", " ".join(rules), " & ".join(sub) + r" \\"]


def latex(table: ReportTable) -> str:
    columns = header_columns(table)
    lines = [f"% harness report: grid {tex_escape(table.grid)}", r"% needs \usepackage{booktabs}",
             r"\begin{table}[t]", r"\centering", rf"\caption{{{caption(table)}}}",
             rf"\label{{tab:{table.grid}}}", r"\begin{tabular}{l" + "r" * len(columns) + "}", r"\toprule",
             *_group_header(table, columns), r"\midrule"]
    for row in table.rows:
        lines.append(" & ".join([tex_escape(row or ALL_ROW), *row_values(table, row, columns, _tex_value)]) + r" \\")
    extra = baseline_rows(table, columns)
    if extra:
        lines.append(r"\midrule")
        lines += [" & ".join([rf"\textit{{{label}}}", *values]) + r" \\" for label, values in extra]
    note = " ".join(tex_escape(line) for line in legend_lines(table, intervals=False))
    lines += [r"\bottomrule", r"\end{tabular}", r"\par\smallskip",
              r"\begin{minipage}{0.95\linewidth}\footnotesize " + note + r"\end{minipage}", r"\end{table}"]
    return "\n".join(lines) + "\n"
