"""Statistics of a report: intervals, Welch contrasts with the baseline row (Holm), claims and their
verdicts, Δ only for runs of the paper's setting, and compile-time checks of ``report.claims``."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_fixtures import make_job

from harness.data.config import DataSpec
from harness.report import build_report
from harness.report.cells import Cell
from harness.report.claims import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED
from harness.report.significance import contrast, holm, interval95
from harness.spec.errors import GridError
from harness.spec.report import ReportClaim, ReportMetric, ReportSpec
from harness.spec.schema import ExperimentSpec, FinetuneSpec
from harness.store import Store

VQA = ReportMetric(name="vqa", task="vqa", metric="vqa_score", label="VQA")
TEXTS = ("emb-only", "bert", "roberta", "electra")
# bert clearly above emb-only; roberta barely; electra clearly below.
MEANS = {"emb-only": 0.60, "bert": 0.70, "roberta": 0.605, "electra": 0.50}


def _cell(values: tuple[float, ...]) -> Cell:
    return Cell("r", "", VQA, {}, tuple(str(i) for i in range(len(values))), values=values)


def test_interval_is_t_based_and_welch_matches_scipy() -> None:
    a = _cell((1.0, 2.0, 3.0))
    low, high = interval95(a)  # type: ignore[misc]
    assert (low, high) == pytest.approx((2.0 - 4.302653 / 3**0.5, 2.0 + 4.302653 / 3**0.5), rel=1e-5)
    assert interval95(_cell((1.0,))) is None
    found = contrast(_cell((5.0, 6.0, 7.0)), a)
    assert found is not None and found.diff == pytest.approx(4.0)
    assert found.p_value == pytest.approx(0.00805, abs=2e-4)  # scipy.stats.ttest_ind(equal_var=False)
    assert found.hedges_g == pytest.approx(4.0 * (1 - 3 / 15))
    assert found.low is not None and found.low < 4.0 < found.high  # type: ignore[operator]
    assert contrast(_cell((5.0,)), a).p_value is None  # type: ignore[union-attr]


def test_holm_is_step_down_and_monotone() -> None:
    assert holm([0.01, 0.04, None, 0.03]) == pytest.approx([0.03, 0.06, None, 0.06])
    assert holm([0.5, 0.2]) == pytest.approx([0.5, 0.4])


def _store(tmp_path: Path, experiment: ExperimentSpec | None = None) -> tuple[list, Store]:
    jobs = [make_job("g", "vqa", s, {"model.text": t}) for t in TEXTS for s in (0, 1, 2)]
    if experiment is not None:
        jobs = [job.model_copy(update={"experiment": experiment}) for job in jobs]
    store = Store(tmp_path)
    for job in jobs:
        store.write_run({"spec": job, "status": "done"})
        value = MEANS[job.factors["model.text"]] + 0.01 * (job.seed - 1)
        store.write_metrics(job.run_id, [{"stage": "finetune", "task": "vqa", "split": "test",
                                          "metric": "vqa_score", "value": value, "step": 3}])
    return jobs, store


def test_contrasts_with_the_baseline_row_are_tested_and_holm_adjusted(tmp_path: Path) -> None:
    jobs, store = _store(tmp_path)
    report = ReportSpec(rows=("model.text",), row_title="Text encoder", metrics=(VQA,), baseline="emb-only")
    table = build_report(jobs, report, store, "g", tmp_path / "out", with_figures=False).table
    by_row = {c.a.row: c for c in table.contrasts}
    assert set(by_row) == {"bert", "roberta", "electra"}
    assert by_row["bert"].verdict(0.05) == "better" and by_row["electra"].verdict(0.05) == "worse"
    assert by_row["roberta"].verdict(0.05) == "no significant difference"
    # Holm: the smallest p ×3, the next ×2, the largest ×1 (roberta's), each at least the one before.
    ordered = sorted(table.contrasts, key=lambda c: c.p_value)  # type: ignore[arg-type, return-value]
    assert ordered[0].p_adjusted == pytest.approx(3 * ordered[0].p_value)  # type: ignore[operator]
    assert ordered[-1].a.row == "roberta" and ordered[-1].p_adjusted == pytest.approx(ordered[-1].p_value)
    md = (tmp_path / "out" / "table.md").read_text()
    assert "## Each row against the baseline row emb-only" in md and "| Text encoder | metric |" in md
    assert "| bert | VQA | +10.00 [" in md
    assert "[59.00 ± 1.00]" not in md and "60.00 ± 1.00 [57.52, 62.48] (n=3)" in md


def _claims_report(*claims: ReportClaim) -> ReportSpec:
    return ReportSpec(rows=("model.text",), metrics=(VQA,), baseline="emb-only", claims=claims)


def test_claims_are_judged_with_the_test_behind_each(tmp_path: Path) -> None:
    jobs, store = _store(tmp_path)
    claims = (
        ReportClaim(text="pre-trained encoders beat emb-only", kind="better", rows=("bert", "roberta")),
        ReportClaim(text="one of them suffices", kind="better", rows=("bert", "roberta"), at_least=1),
        ReportClaim(text="electra beats emb-only", kind="better", rows=("electra",)),
        ReportClaim(text="BERT best", kind="best", rows=("bert",)),
        ReportClaim(text="RoBERTa best", kind="best", rows=("roberta",)),
        ReportClaim(text="electra does not help", kind="not_better", rows=("electra",)),
        ReportClaim(text="roberta does not help", kind="not_better", rows=("roberta",)),
    )
    table = build_report(jobs, _claims_report(*claims), store, "g", tmp_path / "out", with_figures=False).table
    verdicts = [v.verdict for v in table.verdicts]
    assert verdicts == [INCONCLUSIVE, REPRODUCED, NOT_REPRODUCED, REPRODUCED, NOT_REPRODUCED, REPRODUCED,
                        INCONCLUSIVE]
    assert "1 of 2 significantly better than emb-only (bert); needed 2" in table.verdicts[0].reason
    assert len(table.verdicts[3].contrasts) == 3  # bert against each other row
    md = (tmp_path / "out" / "table.md").read_text()
    assert "## Claims of the paper, judged at this scale" in md
    assert "| pre-trained encoders beat emb-only | **inconclusive at this scale** |" in md
    assert "two-sided Welch t-test over seeds, α = 0.05, Holm-adjusted over the claim's contrasts" in md


def test_best_ignores_rows_that_never_record_the_metric_but_waits_for_rows_not_run(tmp_path: Path) -> None:
    claim = ReportClaim(text="BERT best", kind="best", rows=("bert",))
    jobs = [make_job("g", "vqa", s, {"model.text": t}) for t in TEXTS for s in (0, 1, 2)]
    store = Store(tmp_path)
    for job in jobs:
        store.write_run({"spec": job, "status": "done"})
        if job.factors["model.text"] != "electra":  # electra finished without recording vqa_score: "no value"
            value = MEANS[job.factors["model.text"]] + 0.01 * (job.seed - 1)
            store.write_metrics(job.run_id, [{"stage": "finetune", "task": "vqa", "split": "test",
                                              "metric": "vqa_score", "value": value, "step": 3}])
    table = build_report(jobs, _claims_report(claim), store, "g", tmp_path / "a", with_figures=False).table
    assert table.cells[("electra", "", "vqa")].state == "no value"
    assert table.verdicts[0].verdict == REPRODUCED and len(table.verdicts[0].contrasts) == 2
    pending = [*jobs, make_job("g", "vqa", 0, {"model.text": "albert"})]  # albert has not run yet
    later = build_report(pending, _claims_report(claim), store, "g", tmp_path / "b", with_figures=False).table
    assert later.cells[("albert", "", "vqa")].state == "missing"
    assert later.verdicts[0].verdict == INCONCLUSIVE  # a row that has not run yet may still beat bert


def test_a_claim_without_values_is_not_measured(tmp_path: Path) -> None:
    jobs = [make_job("g", "vqa", s, {"model.text": t}) for t in TEXTS for s in (0, 1)]
    claim = ReportClaim(text="x", kind="better", rows=("bert",))
    table = build_report(jobs, _claims_report(claim), Store(tmp_path), "g", tmp_path / "o", with_figures=False).table
    assert table.verdicts[0].verdict == "not measured"


def test_delta_only_for_runs_of_the_papers_setting(tmp_path: Path) -> None:
    report = ReportSpec(rows=("model.text",), metrics=(VQA,), reference={"bert": {"vqa": 74.98}})
    jobs, store = _store(tmp_path / "local")
    local = build_report(jobs, report, store, "g", tmp_path / "local" / "out", with_figures=False)
    assert local.table.cells[("bert", "", "vqa")].delta is None
    assert "VQA Δ" not in local.markdown and "| 74.98 |" in local.markdown and "no Δ is given" in local.markdown
    paper = ExperimentSpec(finetune={"vqa": FinetuneSpec(steps=10, eval_splits=("test",))},
                           data=DataSpec(source="arrow", root="/data/arrow"))
    jobs, store = _store(tmp_path / "paper", paper)
    real = build_report(jobs, report, store, "g", tmp_path / "paper" / "out", with_figures=False)
    assert real.table.cells[("bert", "", "vqa")].delta == pytest.approx(70.0 - 74.98)
    assert "| VQA Δ |" in real.markdown and "| -4.98 |" in real.markdown


GRID = """\
name: g
base:
  model: {{scale: tiny}}
  finetune: {{vqa: {{steps: 2}}}}
factors:
  model.text: [emb-only, bert]
report:
  rows: [model.text]
  baseline: emb-only
  metrics: [{{name: vqa, task: vqa, metric: vqa_score}}]
  claims:
    - {claim}
"""


@pytest.mark.parametrize(("claim", "message"), [
    ("{text: x, kind: better, rows: [bertt]}", "report.claims.0.rows.0: 'bertt' is not a row of the table"),
    ("{text: x, kind: better, rows: [bert], metrics: [vqaa]}", "unknown report metric 'vqaa'; did you mean 'vqa'?"),
    ("{text: x, kind: best, rows: [bert, emb-only]}", "needs at least one row outside 'rows'"),
    ("{text: x, kind: greater, rows: [bert]}", "report.claims.0.kind"),
    ("{text: x, kind: better, rows: [bert], at_least: 2}", "at_least 2 > 1 rows"),
])
def test_bad_claims_are_rejected_at_compile_time(tmp_path: Path, claim: str, message: str) -> None:
    from harness.spec.compile import compile_grid

    path = tmp_path / "g.yaml"
    path.write_text(GRID.format(claim=claim))
    with pytest.raises(GridError) as caught:
        compile_grid(path)
    assert message in str(caught.value)


def test_claims_never_enter_run_ids(tmp_path: Path) -> None:
    from harness.spec.compile import compile_grid

    path = tmp_path / "g.yaml"
    path.write_text(GRID.format(claim="{text: x, kind: better, rows: [bert]}"))
    first = [j.run_id for j in compile_grid(path).jobs]
    path.write_text(GRID.format(claim="{text: another wording, kind: not_better, rows: [bert]}"))
    assert [j.run_id for j in compile_grid(path).jobs] == first
