"""Grid file → frozen job specs: one per cell × seed × stage, identical pre-training shared.

    grid = compile_grid("grids/text_encoders.yaml", profile="local", sets=["optim.lr=2e-5"])
    for job in grid.jobs: ...
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.paths import absolute_locations
from harness.spec.cells import CellBuilder, run_id
from harness.spec.document import GridDocument, did_you_mean, load_document
from harness.spec.errors import GridError, Issue
from harness.spec.factors import Axis, Condition, iter_cells, parse_conditions, parse_groups, parse_only
from harness.spec.keypaths import set_path
from harness.spec.report import ReportSpec, check_report_rows, join_label
from harness.spec.schema import ExperimentSpec, JobSpec, PluginRef, import_run_id, pretrain_import
from harness.spec.search import SearchSpec
from harness.spec.site import SiteValue
from harness.spec.splits import eval_split_issues, report_split_issues

__all__ = ["CompiledGrid", "compile_grid", "run_id"]


@dataclass(frozen=True)
class CompiledGrid:
    name: str
    path: Path
    profile: str | None
    jobs: tuple[JobSpec, ...]
    axes: tuple[Axis, ...]
    seeds: tuple[int, ...]
    cells: int
    report: ReportSpec
    search: dict[str, Any] | None = None
    description: str = ""
    base: ExperimentSpec | None = field(default=None, repr=False)
    plugins: tuple[PluginRef, ...] = ()

    @property
    def factors(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes)


def _validation_issues(doc: GridDocument, prefix: tuple[str, ...], exc: ValidationError,
                       context: str = "") -> list[Issue]:
    issues = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        issues.append(doc.issue((*prefix, *loc), msg + context))
    return issues


MAX_SEEDS = 1000
SEED_LIMIT = 2**32  # numpy and torch seeds: 0 ≤ seed < 2**32


def _seeds(doc: GridDocument, issues: list[Issue]) -> tuple[int, ...]:
    raw = doc.data.get("seeds", 1)
    expected = (f"expected a count from 1 to {MAX_SEEDS} or a non-empty list of at most {MAX_SEEDS} distinct "
                f"whole numbers in [0, 2**32)")
    if isinstance(raw, int) and not isinstance(raw, bool):
        if 1 <= raw <= MAX_SEEDS:
            return tuple(range(raw))
        issues.append(doc.issue(("seeds",), f"{expected}; got {raw}"))
        return ()
    if isinstance(raw, list) and 0 < len(raw) <= MAX_SEEDS and all(
            isinstance(s, int) and not isinstance(s, bool) for s in raw):
        bad = [s for s in raw if not 0 <= s < SEED_LIMIT]
        if bad:
            issues.append(doc.issue(("seeds",), f"seed {bad[0]} is outside [0, 2**32)"))
            return ()
        if len(set(raw)) == len(raw):
            return tuple(raw)
        issues.append(doc.issue(("seeds",), f"duplicate seeds in {raw}"))
        return ()
    issues.append(doc.issue(("seeds",), expected))
    return ()


def _check_report(doc: GridDocument, axes: dict[str, Axis], issues: list[Issue]) -> ReportSpec:
    try:
        report = ReportSpec.model_validate(doc.data.get("report") or {})
    except ValidationError as exc:
        issues.extend(_validation_issues(doc, ("report",), exc))
        return ReportSpec()
    for key in ("rows", "columns"):
        for i, name in enumerate(getattr(report, key)):
            if name not in axes:
                issues.append(doc.issue(("report", key, str(i)), f"unknown factor '{name}'"
                                                                  f"{did_you_mean(name, list(axes))}"))
    if all(name in axes for name in report.rows):
        labels = [join_label(combo) for combo in itertools.product(*(axes[n].labels() for n in report.rows))]
        issues.extend(doc.issue(key, message) for key, message in check_report_rows(report, labels))
    return report


def _check_search(doc: GridDocument, issues: list[Issue]) -> dict[str, Any] | None:
    raw = doc.data.get("search")
    if raw is None:
        return None
    try:
        SearchSpec.model_validate(raw)
    except ValidationError as exc:
        issues.extend(_validation_issues(doc, ("search",), exc))
    return raw


def compile_grid(path: str | Path, profile: str | None = None, sets: Sequence[str] = (),
                 only: Sequence[str] = (), drop_factors: Sequence[str] = (),
                 transform: Callable[[ExperimentSpec], ExperimentSpec] | None = None,
                 site: Sequence[SiteValue] = ()) -> CompiledGrid:
    """Compile a grid file; every problem of the file is raised together as one GridError.

    ``drop_factors``: factors to leave out (a search replaces the factors its parameters set).
    ``transform``: applied to every cell's experiment before its run ids (``--rehearse``).
    ``site``: placement from harness.toml and the environment (``harness.spec.site.site_values()``).
    """
    doc = load_document(path, profile, tuple(sets), site)
    issues: list[Issue] = []
    plugins = _import_plugins(doc, issues)  # before anything is validated: they add names
    if issues:
        raise GridError(issues)
    factors = doc.data.get("factors")
    for name in drop_factors:
        if isinstance(factors, dict) and name in factors:
            doc.data["factors"] = factors = {k: v for k, v in factors.items() if k != name}
        else:
            known = list(factors) if isinstance(factors, dict) else []
            issues.append(Issue(str(doc.path), None, "search.replaces", f"no factor '{name}' to replace"
                                                                         f"{did_you_mean(name, known)}"))
    base_raw = doc.data.get("base") or {}
    base: ExperimentSpec | None = None
    if not isinstance(base_raw, dict):
        issues.append(doc.issue(("base",), "expected a mapping (the experiment)"))
    else:
        base_raw = absolute_locations(base_raw)  # a job may run in another working directory
        try:
            base = ExperimentSpec.model_validate(base_raw)
        except ValidationError as exc:
            issues.extend(_validation_issues(doc, ("base",), exc))
    groups = parse_groups(doc, issues)
    axes = {a.name: a for group in groups for a in group}
    excludes = [c for i, raw in enumerate(doc.data.get("exclude") or [])
                if (c := parse_conditions(doc, raw, ("exclude", str(i)), axes, issues))]
    only_cond = parse_only(doc, only, axes, issues)
    seeds = _seeds(doc, issues)
    report = _check_report(doc, axes, issues) if not drop_factors else ReportSpec()
    search = _check_search(doc, issues)
    for s in sets:
        key = s.partition("=")[0].strip().removeprefix("base.")
        for axis in axes.values():
            if any(p == key for lv in axis.levels for p, _ in lv.sets):
                issues.append(Issue("--set", None, key, f"'{key}' is set by factor '{axis.name}'; use --only "
                                                        f"{axis.name}=LEVEL to pick a level"))
    if base is not None and not issues:
        issues.extend(_check_levels(doc, base_raw, groups))
    if issues:
        raise GridError(issues)
    assert base is not None
    jobs, cells = _jobs(doc, CellBuilder(base_raw, base), groups, excludes, only_cond, seeds, issues, transform,
                        plugins)
    if not issues:
        issues.extend(eval_split_issues(doc, jobs))
        if not drop_factors:
            issues.extend(report_split_issues(doc, report, jobs))
    if issues:
        raise GridError(issues)
    if not jobs:
        raise GridError([Issue(str(doc.path), None, "", "no cells left after exclude/--only")])
    return CompiledGrid(doc.name, doc.path, doc.profile, tuple(jobs), tuple(axes.values()), seeds, cells,
                        report, search, str(doc.data.get("description") or ""), base, plugins)


def _import_plugins(doc: GridDocument, issues: list[Issue]) -> tuple[PluginRef, ...]:
    """Import the grid's ``plugins:`` modules; each becomes a ``PluginRef`` every job carries."""
    raw = doc.data.get("plugins") or []
    if not isinstance(raw, list) or not all(isinstance(m, str) and m for m in raw):
        issues.append(doc.issue(("plugins",), "expected a list of module names, e.g. [my_package.my_module]"))
        return ()
    from harness.plugins import import_plugin

    refs = []
    for i, name in enumerate(raw):
        try:
            info = import_plugin(name)
        except ValueError as exc:  # not importable, or a name clash while it registered
            issues.append(doc.issue(("plugins", str(i)), str(exc)))
            continue
        refs.append(PluginRef(module=info.module, version=info.version))
    return tuple(refs)


def _apply(base_raw: dict[str, Any], sets: Any) -> dict[str, Any]:
    out = base_raw
    for key, value in sets:
        out = set_path(out, key, value)
    return out


def _check_levels(doc: GridDocument, base_raw: dict[str, Any], groups: list[list[Axis]]) -> list[Issue]:
    """Each level on its own against the base, so a bad value is reported at its level's line."""
    issues: list[Issue] = []
    for group in groups:
        for axis in group:
            for lv in axis.levels:
                try:
                    ExperimentSpec.model_validate(_apply(base_raw, lv.sets))
                except ValidationError as exc:
                    where = "zip" if len(group) > 1 else "factors"
                    section = (where, axis.name, lv.label) if (where, axis.name, lv.label) in doc.origins else (
                        where, axis.name)
                    for err in exc.errors():
                        msg = err["msg"].removeprefix("Value error, ")
                        key = ".".join(str(p) for p in err["loc"])
                        issues.append(doc.issue(section, f"level '{lv.label}': {key}: {msg}"))
    return issues


def _jobs(doc: GridDocument, builder: CellBuilder, groups: list[list[Axis]], excludes: list[Condition],
          only: Condition, seeds: tuple[int, ...], issues: list[Issue],
          transform: Callable[[ExperimentSpec], ExperimentSpec] | None = None,
          plugins: tuple[PluginRef, ...] = ()) -> tuple[list[JobSpec], int]:
    shared_axes = {a.name for g in groups for a in g if not a.finetune_only()}
    pretrain: dict[str, JobSpec] = {}
    finetune: list[JobSpec] = []
    cells = 0
    for cell in iter_cells(groups, excludes, only):
        cells += 1
        sets = [kv for level in cell.values() for kv in level.sets]
        try:
            exp = builder.build(sets)
            exp = transform(exp) if transform is not None else exp
        except (ValidationError, ValueError) as exc:
            context = " (in the cell " + ", ".join(f"{k}={v.label}" for k, v in cell.items()) + ")"
            if isinstance(exc, ValidationError):
                issues.extend(_validation_issues(doc, ("base",), exc, context))
            else:
                issues.append(doc.issue(("base",), str(exc) + context))
            continue
        labels = {name: level.label for name, level in cell.items()}
        for seed in seeds:
            parent = None
            imported = pretrain_import(exp)
            if imported is not None:  # fine-tune from an imported checkpoint: no pre-training job
                parent = import_run_id(*imported)
            elif exp.pretrain is not None:
                parent = builder.run_id(exp, "pretrain", None, seed, None)
                if parent not in pretrain:
                    pretrain[parent] = JobSpec.model_construct(
                        run_id=parent, grid=doc.name, stage="pretrain", task=None, seed=seed,
                        factors={k: v for k, v in labels.items() if k in shared_axes}, depends_on=None,
                        experiment=exp, plugins=plugins)
            for task in exp.finetune:
                finetune.append(JobSpec.model_construct(
                    run_id=builder.run_id(exp, "finetune", task, seed, parent), grid=doc.name, stage="finetune",
                    task=task, seed=seed, factors=labels, depends_on=parent, experiment=exp, plugins=plugins))
    unique: dict[str, JobSpec] = {}
    for job in finetune:
        unique.setdefault(job.run_id, job)
    return [*pretrain.values(), *unique.values()], cells
