"""Report cells: failed, missing, blocked, single-seed and shared pre-training cells; figures."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from report_fixtures import EXPERIMENT, fill_text_store, make_job, text_jobs, text_report

from harness.report import build_report
from harness.report.stats import within_noise
from harness.spec.report import ReportMetric, ReportSpec
from harness.spec.schema import PretrainSpec
from harness.store import CorruptFileWarning, Store

VQA = ReportMetric(name="vqa", task="vqa", metric="vqa_score", label="VQA")


def _vqa_rows(value: float) -> list[dict]:
    return [{"stage": "finetune", "task": "vqa", "split": "test", "metric": "vqa_score", "value": value, "step": 3}]


def test_failed_missing_and_single_seed_cells(tmp_path: Path) -> None:
    jobs = [make_job("g", "vqa", seed, {"model.text": text}) for text in ("bert", "roberta", "albert", "deberta")
            for seed in (0, 1)]
    store = Store(tmp_path)
    by = {(j.factors["model.text"], j.seed): j for j in jobs}
    for text, value in (("bert", 0.5), ("roberta", 0.6)):  # one seed each: no noise estimate
        store.write_run({"spec": by[(text, 0)], "status": "done"})
        store.write_metrics(by[(text, 0)].run_id, _vqa_rows(value))
    for seed in (0, 1):
        store.write_run({"spec": by[("albert", seed)], "status": "failed", "error": "NaN loss"})
    report = ReportSpec(rows=("model.text",), metrics=(VQA,))
    result = build_report(jobs, report, store, "g", tmp_path / "out", with_figures=False)
    cells = {row: result.table.cells[(row, "", "vqa")] for row in ("bert", "roberta", "albert", "deberta")}
    assert cells["albert"].state == "failed" and cells["deberta"].state == "missing"
    assert cells["bert"].n == 1 and cells["bert"].std is None and cells["roberta"].best
    assert not cells["bert"].near_best and within_noise(cells["bert"], cells["roberta"]) is None
    lines = {line.split(" | ")[0].lstrip("| "): line for line in result.markdown.splitlines() if line.startswith("| ")}
    assert "failed (2)" in lines["albert"] and "missing (2)" in lines["deberta"]
    assert "**60.00** (n=1 of 2; 1 missing)" in lines["roberta"] and "50.00 (n=1 of 2; 1 missing)" in lines["bert"]
    assert "within seed noise" not in "\n".join(result.table.notes)
    tex = (tmp_path / "out" / "table.tex").read_text()
    assert r"\textit{failed (2)}" in tex and r"\textbf{60.00}\,(1/2)" in tex
    csv = (tmp_path / "out" / "table.csv").read_text()
    assert "albert,,vqa,VQA,vqa,,vqa_score,,,0,,,2,failed,2 failed" in csv


def test_report_with_no_results_lists_every_cell_as_missing(tmp_path: Path) -> None:
    jobs = text_jobs()
    result = build_report(jobs, text_report(), Store(tmp_path), "demo", tmp_path / "out")
    assert result.table.measured == 0 and len(result.table.cells) == 8
    assert all(cell.state == "missing" for cell in result.table.cells.values())
    assert result.markdown.count("missing (3)") == 8
    assert "Figures: none yet" in result.markdown
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["table.csv", "table.md", "table.tex"]


def test_corrupt_store_file_still_gives_a_report(tmp_path: Path) -> None:
    jobs = text_jobs()
    store = Store(tmp_path)
    fill_text_store(store, jobs)
    (tmp_path / "store" / "metrics" / "00000000000000000009-1-bad.parquet").write_bytes(b"PAR1 garbage")
    with pytest.warns(CorruptFileWarning):
        result = build_report(jobs, text_report(), store, "demo", tmp_path / "out", with_figures=False)
    assert result.table.measured == 7
    assert (tmp_path / "store" / "quarantine" / "metrics" / "00000000000000000009-1-bad.parquet").exists()


def test_shared_pretraining_zero_shot_and_blocked_cells(tmp_path: Path) -> None:
    grid, sizes = "vlp", ("224", "384")
    pre = {t: make_job(grid, "", 0, {"model.text": t}, stage="pretrain") for t in ("bert", "roberta")}
    fine = [make_job(grid, "vqa", 0, {"model.text": t, "finetune.vqa.image_size": s}, depends_on=pre[t].run_id)
            for t in pre for s in sizes]
    store = Store(tmp_path)
    store.write_run({"spec": pre["bert"], "status": "done"})
    store.write_metrics(pre["bert"].run_id, [{"stage": "pretrain", "task": "retrieval", "split": "test",
                                              "metric": "ir_r1", "value": 0.25}])
    store.write_run({"spec": pre["roberta"], "status": "failed", "error": "OOM"})
    for job in fine[:2]:
        store.write_run({"spec": job, "status": "done"})
        store.write_metrics(job.run_id, _vqa_rows(0.6 if job.factors["finetune.vqa.image_size"] == "224" else 0.7))
    report = ReportSpec(rows=("model.text",), columns=("finetune.vqa.image_size",),
                        metrics=(VQA, ReportMetric(name="zs", task="pretrain", metric="ir_r1", label="ZS IR@1")))
    table = build_report([*pre.values(), *fine], report, store, grid, tmp_path / "out", with_figures=False).table
    assert table.columns == ["224", "384"] and table.rows == ["bert", "roberta"]
    assert table.cells[("bert", "384", "vqa")].mean == pytest.approx(70.0)
    # The one pre-training job serves both resolution columns of its row.
    assert table.cells[("bert", "224", "zs")].expected == (pre["bert"].run_id,)
    assert table.cells[("bert", "384", "zs")].mean == pytest.approx(25.0)
    assert table.cells[("roberta", "224", "zs")].state == "failed"
    assert table.cells[("roberta", "384", "vqa")].state == "blocked"


def test_zero_shot_after_a_pretraining_without_itm_is_not_applicable_not_missing(tmp_path: Path) -> None:
    """MLM alone has no head that scores pairs: its zero-shot cell is n/a (as in the paper's Table 7), not a
    missing result; it is left out of the cell count and the claims, and a note says why."""
    grid = "objectives"
    jobs = {}
    for objectives in (("mlm",), ("mlm", "itm")):
        exp = EXPERIMENT.model_copy(update={"pretrain": PretrainSpec(objectives=objectives)})
        job = make_job(grid, "", 0, {"objectives": "+".join(objectives)}, stage="pretrain")
        jobs[job.factors["objectives"]] = job.model_copy(update={"experiment": exp})
    store = Store(tmp_path)
    for job in jobs.values():
        store.write_run({"spec": job, "status": "done"})
    store.write_metrics(jobs["mlm+itm"].run_id, [{"stage": "pretrain", "task": "retrieval", "split": "test",
                                                  "metric": "ir_r1", "value": 0.25}])
    report = ReportSpec(rows=("objectives",), metrics=(ReportMetric(name="zs", task="pretrain", metric="ir_r1",
                                                                     label="ZS IR@1"),))
    result = build_report(list(jobs.values()), report, store, grid, tmp_path / "out", with_figures=False)
    table = result.table
    assert table.cells[("mlm", "", "zs")].state == "n/a"
    assert table.cells[("mlm+itm", "", "zs")].mean == pytest.approx(25.0)
    assert table.not_applicable == 1
    text = (tmp_path / "out" / "table.md").read_text()
    assert "1 of 1 cells measured (1 n/a" in text and "| mlm | n/a |" in text
    assert any("n/a for mlm" in note for note in table.notes)


def test_a_count_column_is_shown_but_never_ranked_or_judged(tmp_path: Path) -> None:
    """The VQA test-dev column counts the answers written for EvalAI: not bold, no τ, no claim on it."""
    jobs = text_jobs()
    store = Store(tmp_path)
    fill_text_store(store, jobs)
    for job in jobs:
        if job.task == "vqa" and job.factors["model.text"] in ("bert", "roberta"):
            store.write_metrics(job.run_id, [{"stage": "finetune", "task": "vqa", "split": "test",
                                              "metric": "predictions", "value": 24 + (job.factors["model.text"]
                                                                                       == "bert"), "step": 3}])
    count = ReportMetric(name="sub", task="vqa", metric="predictions", scale=1, ranked=False, label="answers")
    report = text_report().model_copy(update={"metrics": (*text_report().metrics, count)})
    table = build_report(jobs, report, store, "demo", tmp_path / "out", with_figures=False).table
    cells = table.column_cells("", "sub")
    assert [c.mean for c in cells if c.mean is not None] == [25, 24]
    assert not any(c.best or c.near_best for c in cells)
    assert all(a.metric != "sub" for a in table.agreements)
    assert all(c.a.metric.name != "sub" for c in table.contrasts)
    assert all(c.a.metric.name != "sub" for v in table.verdicts for c in v.contrasts)
    text = (tmp_path / "out" / "table.md").read_text()
    assert "| 25 (n=3) |" in text and "**25" not in text


def test_rank_agreement_and_noise_note(tmp_path: Path) -> None:
    texts = ("emb-only", "bert", "roberta", "electra")
    jobs = [make_job("g", "vqa", s, {"model.text": t}) for t in texts for s in (0, 1, 2)]
    store = Store(tmp_path)
    means = {"emb-only": 0.60, "bert": 0.70, "roberta": 0.705, "electra": 0.65}
    for job in jobs:
        store.write_run({"spec": job, "status": "done"})
        store.write_metrics(job.run_id, _vqa_rows(means[job.factors["model.text"]] + 0.01 * (job.seed - 1)))
    report = ReportSpec(rows=("model.text",), metrics=(VQA,),
                        reference={"emb-only": {"vqa": 73.9}, "bert": {"vqa": 74.9}, "roberta": {"vqa": 75.1},
                                   "electra": {"vqa": 74.2}})
    result = build_report(jobs, report, store, "g", tmp_path / "out", with_figures=False)
    (agreement,) = result.table.agreements
    assert agreement.tau == pytest.approx(1.0) and agreement.n == 4
    assert "VQA: τ = +1.00" in result.markdown
    assert "the difference between roberta and bert (0.50) is within seed noise at this scale" in result.markdown
    assert result.table.cells[("roberta", "", "vqa")].delta is None  # synthetic runs: no Δ against the paper


@pytest.mark.slow
def test_figures_scores_curves_and_resolution(tmp_path: Path) -> None:
    jobs = text_jobs()
    store = Store(tmp_path)
    fill_text_store(store, jobs)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorruptFileWarning)
        made = build_report(jobs, text_report(), store, "demo", tmp_path / "out").files
    names = {p.name for p in made}
    assert {"scores.png", "scores.pdf", "curves.png", "curves.pdf"} <= names
    assert all(p.stat().st_size > 1000 for p in made if p.suffix in (".png", ".pdf"))

    visions, sizes = ("clip-vit-224/32", "clip-vit-224/16"), ("224", "384", "576")
    res_jobs = [make_job("res", "vqa", 0, {"model.vision": v, "finetune.vqa.image_size": s})
                for v in visions for s in sizes]
    for i, job in enumerate(res_jobs):
        store.write_run({"spec": job, "status": "done"})
        store.write_metrics(job.run_id, _vqa_rows(0.5 + 0.01 * i))
    report = ReportSpec(rows=("model.vision",), columns=("finetune.vqa.image_size",), metrics=(VQA,),
                        figure="resolution", x="finetune.vqa.image_size",
                        reference={"clip-vit-224/32": {"224": 72.37, "384": 74.17, "576": 74.98}})
    result = build_report(res_jobs, report, store, "res", tmp_path / "res")
    assert (tmp_path / "res" / "resolution.png").exists() and (tmp_path / "res" / "resolution.pdf").exists()
    assert result.table.cells[("clip-vit-224/32", "384", "vqa")].paper == 74.17
    (pooled,) = result.table.agreements  # each column has 1 row with a paper value: only the pooled τ
    assert pooled.column == "all columns" and pooled.n == 3 and pooled.tau == pytest.approx(1.0)
    assert EXPERIMENT.finetune["vqa"].eval_splits == ("test",)


def test_score_dots_are_zoomed_with_intervals_and_paper_markers_only_where_they_exist(tmp_path: Path) -> None:
    from matplotlib.collections import PolyCollection

    from harness.report import figures

    jobs = text_jobs()
    store = Store(tmp_path)
    fill_text_store(store, jobs)
    table = build_report(jobs, text_report(), store, "demo", tmp_path / "out", with_figures=False).table
    fig = figures.score_figure(table)
    vqa, snli = fig.axes[0], fig.axes[1]
    assert vqa.get_xlim()[0] > 50 and snli.get_xlim()[0] > 30  # zoomed to the data, not from 0
    assert vqa.get_xlabel() == "VQA score (×100)" and vqa.get_ylabel() == "Text encoder"
    assert vqa.get_legend() is None and fig.legends  # one legend, outside the panels
    # Synthetic runs: the paper's 3 VQA values on a top axis of their own; none for SNLI-VE (no paper values).
    tops = [ax for ax in fig.axes[2:]]
    assert len(tops) == 1 and sum(len(line.get_xdata()) for line in tops[0].get_lines()) == 3
    assert "(off axis)" in " ".join(t.get_text() for t in fig.legends[0].get_texts())  # chance 5 is far away
    curves = figures.curve_figure(table, store.metrics())
    styles = {line.get_linestyle() for line in curves.axes[1].get_lines()}
    assert len(styles) >= 3 and any(isinstance(c, PolyCollection) for c in curves.axes[1].collections)


def test_report_of_an_only_selection_with_claims_about_rows_left_out(tmp_path: Path) -> None:
    """`harness report GRID --only model.text=emb-only`: the grid's claims name rows (bert, roberta...) that the
    selection leaves out; they are judged as not measured instead of failing the report with a KeyError."""
    from harness.spec.compile import compile_grid

    root = Path(__file__).resolve().parents[2]
    grid = compile_grid(root / "grids" / "text_encoders.yaml", "local", only=["model.text=emb-only"])
    assert grid.report.claims
    table = build_report(grid.jobs, grid.report, Store(tmp_path), grid.name, tmp_path / "report",
                         with_figures=False).table
    assert len(table.verdicts) == len(grid.report.claims)
