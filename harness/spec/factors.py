"""Factors, zipped axes, exclusions and ``--only`` filters → the list of grid cells.

A *level* is a label plus the keys it sets. A factor is crossed with the others; a zip
group's axes move together (level i of each). A cell is one choice per factor/zip group.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from harness.spec.document import GridDocument, did_you_mean
from harness.spec.errors import Issue
from harness.spec.keypaths import check_path

Assignments = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Level:
    label: str
    sets: Assignments


@dataclass(frozen=True)
class Axis:
    name: str
    levels: tuple[Level, ...]

    def labels(self) -> list[str]:
        return [lv.label for lv in self.levels]

    def finetune_only(self) -> bool:
        """True when every level sets only fine-tuning keys (so pre-training is shared across it)."""
        return all(path.startswith("finetune.") for lv in self.levels for path, _ in lv.sets)


def _label(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "+".join(_label(v) for v in value)
    return str(value)


def _parse_level(doc: GridDocument, where: tuple[str, ...], axis: str, raw: Any, label: str | None,
                 issues: list[Issue]) -> Level | None:
    if isinstance(raw, dict):
        sets = {k: v for k, v in raw.items() if k != "label"}
        if not sets:
            issues.append(doc.issue(where, "a level mapping must set at least one key"))
            return None
        label = raw.get("label", label)
        if label is None:
            if axis not in sets:
                issues.append(doc.issue(where, f"this level sets several keys; give it a 'label' (or set '{axis}')"))
                return None
            label = _label(sets[axis])
    else:
        problem = check_path(axis)
        if problem:
            issues.append(doc.issue(where[:2], f"factor '{axis}' is not a key path, so its levels must be mappings "
                                               f"of key: value ({problem})"))
            return None
        sets, label = {axis: raw}, label if label is not None else _label(raw)
    for path in sets:
        problem = check_path(path)
        if problem:
            issues.append(doc.issue((*where, path), problem))
    return Level(str(label), tuple(sets.items()))


def parse_axis(doc: GridDocument, section: tuple[str, ...], name: str, raw: Any, issues: list[Issue]) -> Axis | None:
    where = (*section, name)
    if isinstance(raw, list):
        items: list[tuple[str | None, Any, tuple[str, ...]]] = [(None, item, (*where, str(i)))
                                                                for i, item in enumerate(raw)]
    elif isinstance(raw, dict):
        items = [(str(label), item, (*where, str(label))) for label, item in raw.items()]
    else:
        issues.append(doc.issue(where, "expected a list of levels or a mapping of label → level"))
        return None
    if not items:
        issues.append(doc.issue(where, f"factor '{name}' has no levels"))
        return None
    levels = [lv for label, item, at in items if (lv := _parse_level(doc, at, name, item, label, issues))]
    seen: set[str] = set()
    for lv in levels:
        if lv.label in seen:
            issues.append(doc.issue(where, f"duplicate level '{lv.label}' in factor '{name}'"))
        seen.add(lv.label)
    return Axis(name, tuple(levels)) if len(levels) == len(items) else None


def parse_groups(doc: GridDocument, issues: list[Issue]) -> list[list[Axis]]:
    """Each group is crossed with the others; axes inside a group move together."""
    groups: list[list[Axis]] = []
    factors = doc.data.get("factors") or {}
    if not isinstance(factors, dict):
        issues.append(doc.issue(("factors",), "expected a mapping of factor name → levels"))
        factors = {}
    for name, raw in factors.items():
        axis = parse_axis(doc, ("factors",), name, raw, issues)
        if axis:
            groups.append([axis])
    zips = doc.data.get("zip") or []
    if not isinstance(zips, list):
        issues.append(doc.issue(("zip",), "expected a list of groups (mappings of axis → levels)"))
        zips = []
    for g, group in enumerate(zips):
        if not isinstance(group, dict) or not group:
            issues.append(doc.issue(("zip", str(g)), "expected a mapping of axis name → list of levels"))
            continue
        axes = [a for name, raw in group.items() if (a := parse_axis(doc, ("zip", str(g)), name, raw, issues))]
        lengths = {a.name: len(a.levels) for a in axes}
        if len(set(lengths.values())) > 1:
            issues.append(doc.issue(("zip", str(g)), f"zipped axes must have equal lengths, got {lengths}"))
        elif len(axes) == len(group):
            groups.append(axes)
    names = [a.name for group in groups for a in group]
    for name in {n for n in names if names.count(n) > 1}:
        issues.append(doc.issue(("factors", name), f"axis '{name}' is defined more than once"))
    return groups


Condition = dict[str, set[str]]


def parse_conditions(doc: GridDocument, raw: Any, where: tuple[str, ...], axes: dict[str, Axis],
                     issues: list[Issue]) -> Condition | None:
    """``{factor: label or [labels]}`` checked against the axes."""
    if not isinstance(raw, dict) or not raw:
        issues.append(doc.issue(where, "expected a mapping of factor: level (or list of levels)"))
        return None
    cond: Condition = {}
    for name, labels in raw.items():
        if name not in axes:
            issues.append(doc.issue((*where, name), f"unknown factor '{name}'{did_you_mean(name, list(axes))}"))
            continue
        wanted = {_label(x) for x in (labels if isinstance(labels, list) else [labels])}
        for label in sorted(wanted - set(axes[name].labels())):
            issues.append(doc.issue((*where, name), f"factor '{name}' has no level '{label}'"
                                                     f"{did_you_mean(label, axes[name].labels())}"))
        cond[name] = wanted
    return cond


def parse_only(doc: GridDocument, only: Sequence[str], axes: dict[str, Axis],
               issues: list[Issue]) -> Condition:
    """Repeated ``--only F=L``: the same factor ORs its levels, different factors AND."""
    cond: Condition = {}
    for item in only:
        name, eq, label = item.partition("=")
        if not eq:
            issues.append(Issue("--only", None, item, "expected FACTOR=LEVEL, e.g. --only model.text=roberta"))
        elif name not in axes:
            issues.append(Issue("--only", None, name, f"unknown factor '{name}'{did_you_mean(name, list(axes))}"))
        elif label not in axes[name].labels():
            issues.append(Issue("--only", None, name, f"factor '{name}' has no level '{label}'"
                                                      f"{did_you_mean(label, axes[name].labels())}"))
        else:
            cond.setdefault(name, set()).add(label)
    return cond


def iter_cells(groups: list[list[Axis]], excludes: list[Condition], only: Condition) -> Iterator[dict[str, Level]]:
    """Every cell (factor name → chosen level) not excluded and passing ``--only``."""
    choices = [[{a.name: a.levels[i] for a in group} for i in range(len(group[0].levels))] for group in groups]
    for combo in itertools.product(*choices):
        cell: dict[str, Level] = {}
        for part in combo:
            cell.update(part)
        if any(all(cell[n].label in labels for n, labels in ex.items()) for ex in excludes):
            continue
        if all(cell[n].label in labels for n, labels in only.items()):
            yield cell
