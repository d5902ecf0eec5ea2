"""The search report: ``<results>/reports/<grid>/search/``.

best.json (best trial, its params and run id), summary.md (every trial, importances),
trials.csv, importances.json, history.png (optimisation history) and slice.png (objective
against each parameter). Each finished trial also becomes one metrics row in the store
(split ``"search"``, see ``store_rows``).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.paths import report_dir
from harness.search.config import SearchSpec

if TYPE_CHECKING:
    import optuna

STORE_SPLIT = "search"


def search_report_dir(results: Path, grid: str) -> Path:
    return report_dir(results, grid) / "search"


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One plain dict per trial, in trial order."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        last_step = max(t.intermediate_values) if t.intermediate_values else None
        rows.append({
            "number": t.number,
            "state": t.state.name,
            # optuna stores a pruned trial's last intermediate value as its value: not a final score
            "value": t.value if t.state.name == "COMPLETE" else None,
            "params": dict(t.params),
            "run_id": t.user_attrs.get("run_id"),
            "last_step": last_step,
            "last_intermediate": t.intermediate_values[last_step] if last_step is not None else None,
            "retry_of": t.user_attrs.get("retry_of"),
            "error": t.user_attrs.get("error") or ("worker lost; retried" if t.user_attrs.get("lost_worker") else None),
            "duration_s": t.duration.total_seconds() if t.duration else None,
        })
    return rows


def importances(study: optuna.Study) -> tuple[dict[str, float], str]:
    """Parameter importances (optuna's default evaluator, PED-ANOVA) and a note.

    Empty, with the reason in the note, when they cannot be had (fewer than 2 complete trials).
    """
    import optuna
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}, f"needs at least 2 complete trials (have {len(complete)})"
    with warnings.catch_warnings(record=True) as caught:  # e.g. "quantiles select the same set of trials"
        warnings.simplefilter("always")
        try:
            values = optuna.importance.get_param_importances(study)
        except (RuntimeError, ValueError, ZeroDivisionError) as exc:
            return {}, f"could not be computed: {exc}"
    note = "; ".join(dict.fromkeys(str(w.message) for w in caught))
    return {k: float(v) for k, v in values.items()}, note


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:  # no complete trial yet
        return None


def write_report(study: optuna.Study, spec: SearchSpec, results: Path, grid: str,
                 store: bool = True) -> Path:
    """Write every report file (and the store rows); returns the report folder."""
    out = search_report_dir(results, grid)
    out.mkdir(parents=True, exist_ok=True)
    rows = trial_rows(study)
    imp, imp_note = importances(study)
    best = best_trial(study)
    summary = {
        "study": study.study_name,
        "grid": grid,
        "objective": {**spec.objective.model_dump(mode="json"), "metric": spec.objective.metric_name()},
        "direction": spec.objective.direction,
        "trials": _state_counts(rows),
        "best": None if best is None else {
            "number": best.number, "value": best.value, "params": best.params,
            "run_id": best.user_attrs.get("run_id"),
            "paths": {name: spec.params[name].path for name in best.params if name in spec.params},
        },
        "importances": imp,
        "importances_note": imp_note,
    }
    (out / "best.json").write_text(json.dumps(summary, indent=1, sort_keys=True, default=str))
    (out / "importances.json").write_text(json.dumps(imp, indent=1))
    _write_csv(rows, spec, out / "trials.csv")
    (out / "summary.md").write_text(summary_markdown(summary, rows, spec))
    from harness.search.plots import plot_history, plot_slices

    plot_history(rows, spec, out / "history.png")
    plot_slices(rows, spec, out / "slice.png")
    if store:
        write_store_rows(results, rows, spec, out / "stored_trials.json", study.study_name)
    return out


def _state_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    return counts


def _write_csv(rows: list[dict[str, Any]], spec: SearchSpec, path: Path) -> None:
    import csv

    names = list(spec.params)
    fields = ["number", "state", "value", *names, "run_id", "last_step", "last_intermediate", "retry_of",
              "duration_s", "error"]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            flat = {k: row.get(k) for k in fields if k not in names}
            flat.update({n: row["params"].get(n) for n in names})
            writer.writerow(flat)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def summary_markdown(summary: dict[str, Any], rows: list[dict[str, Any]], spec: SearchSpec) -> str:
    obj = summary["objective"]
    lines = [f"# Search `{summary['study']}` (grid {summary['grid']})", "",
             f"Objective: {obj['direction']} `{obj['task']}/{obj['split']}/{obj['metric']}`; "
             f"sampler {spec.sampler.name}, pruner {spec.pruner.name}.", "",
             "Trials: " + ", ".join(f"{n} {s.lower()}" for s, n in sorted(summary["trials"].items())), ""]
    best = summary["best"]
    if best is None:
        lines += ["No complete trial yet.", ""]
    else:
        lines += [f"## Best: trial {best['number']}, value {_fmt(best['value'])}", ""]
        lines += [f"- `{best['paths'].get(k, k)}` = {_fmt(v)}" for k, v in best["params"].items()]
        lines += [f"- run `{best['run_id']}`" if best["run_id"] else "", ""]
    lines += ["## Parameter importances (optuna.importance, default evaluator: PED-ANOVA)", ""]
    if summary["importances"]:
        lines += [f"- {k}: {v:.3f}" for k, v in summary["importances"].items()]
        if summary["importances_note"]:
            lines += ["", f"Note: {summary['importances_note']}"]
    else:
        lines.append(f"Not available: {summary['importances_note']}.")
    names = list(spec.params)
    lines += ["", "## Trials", "", "| # | state | value | " + " | ".join(names) + " | run | note |",
              "|---" * (5 + len(names)) + "|"]
    ordered = sorted(rows, key=lambda r: (r["value"] is None, _sort_key(r["value"], spec)))
    for r in ordered:
        cells = [str(r["number"]), r["state"].lower(), _fmt(r["value"]), *(_fmt(r["params"].get(n)) for n in names),
                 (r["run_id"] or "-")[:10], _note(r)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Plots: history.png (objective per trial, best so far), slice.png (objective per parameter).", ""]
    return "\n".join(lines)


def _sort_key(value: float | None, spec: SearchSpec) -> float:
    if value is None:
        return 0.0
    return -value if spec.objective.direction == "maximize" else value


def _note(row: dict[str, Any]) -> str:
    if row["state"] == "PRUNED" and row["last_step"] is not None:
        return f"pruned at step {row['last_step']} ({_fmt(row['last_intermediate'])})"
    if row["retry_of"] is not None:
        return f"retry of trial {row['retry_of']}"
    return (row["error"] or "").replace("|", "/")[:80]


def store_rows(rows: list[dict[str, Any]], spec: SearchSpec) -> dict[str, list[dict[str, Any]]]:
    """run id → metrics rows: one per finished trial, split "search", step = trial number.

    A complete trial's row holds its final objective value; a pruned trial's holds the last
    intermediate value it reported (metric name suffixed ``:pruned``).
    """
    metric = spec.objective.metric_name()
    stage = "pretrain" if spec.objective.task == "pretrain" else "finetune"
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["run_id"] is None or r["state"] not in ("COMPLETE", "PRUNED"):
            continue
        value = r["value"] if r["state"] == "COMPLETE" else r["last_intermediate"]
        if value is None:
            continue
        name = metric if r["state"] == "COMPLETE" else f"{metric}:pruned"
        out.setdefault(r["run_id"], []).append({"stage": stage, "task": spec.objective.task, "split": STORE_SPLIT,
                                                "metric": name, "value": float(value), "step": int(r["number"])})
    return out


def write_store_rows(results: Path, rows: list[dict[str, Any]], spec: SearchSpec, ledger: Path,
                     study_name: str) -> int:
    """Write rows for trials not written before (the ledger lists them); how many were written."""
    from harness.store import Store

    done = set(json.loads(ledger.read_text())) if ledger.exists() else set()
    store = Store(results)
    written = 0
    for run_id, metric_rows in store_rows(rows, spec).items():
        fresh = [m for m in metric_rows if f"{study_name}#{m['step']}" not in done]
        if fresh:
            store.write_metrics(run_id, fresh)
            done.update(f"{study_name}#{m['step']}" for m in fresh)
            written += len(fresh)
    ledger.write_text(json.dumps(sorted(done)))
    return written
