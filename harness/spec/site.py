"""The site configuration: placement held once per machine or cluster, read by every grid command.

Precedence, highest first: ``--set`` > environment (``HARNESS_DATA_ROOT``, ``HARNESS_WEIGHTS_DIR``) >
site file (``$HARNESS_CONFIG``, else ``./harness.toml``) > the grid file. Only placement keys
(``harness.spec.schema.PLACEMENT_KEYS``) may be set here: none of them enters a run id, so one grid
gives the same run ids on every site.

    # harness.toml
    [data]
    root = "/scratch/meter_arrow"     # relative paths are relative to this file
    num_workers = 8
    [model]
    weights_dir = "/scratch/weights"
    [finetune."*"]                    # every fine-tuning task of the grid
    per_device_batch = 16
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from harness.spec.errors import GridError, Issue
from harness.spec.schema import PLACEMENT_KEYS

SITE_FILE = "harness.toml"
ENV_KEYS = {"HARNESS_DATA_ROOT": "data.root", "HARNESS_WEIGHTS_DIR": "model.weights_dir"}
_PATH_KEYS = ("data.root", "model.weights_dir")


@dataclass(frozen=True)
class SiteValue:
    key: str  # dotted; "finetune.*.x" stands for every task of the grid
    value: Any
    origin: str  # file or environment variable, for error messages


def site_file() -> Path | None:
    """``$HARNESS_CONFIG`` (which must exist), else ``harness.toml`` in the current directory, else None."""
    named = os.environ.get("HARNESS_CONFIG")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise GridError([Issue("$HARNESS_CONFIG", None, "", f"names {path}, which is not a file")])
        return path
    local = Path(SITE_FILE)
    return local if local.is_file() else None


def placement_key(key: str) -> bool:
    parts = key.split(".")
    for allowed in PLACEMENT_KEYS:
        pattern = allowed.split(".")
        if len(parts) == len(pattern) and all(p == a or a == "*" for p, a in zip(parts, pattern, strict=True)):
            return True
    return False


def _flatten(table: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and not placement_key(dotted):
            out.extend(_flatten(value, dotted + "."))
        else:
            out.append((dotted, value))
    return out


def _file_values(path: Path) -> list[SiteValue]:
    from harness.spec.document import did_you_mean

    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise GridError([Issue(str(path), None, "", f"cannot read the site configuration: {exc}")]) from None
    values, issues = [], []
    for key, value in _flatten(table):
        if not placement_key(key):
            issues.append(Issue(str(path), None, key, "not a placement key (a site configuration sets only "
                                f"where things are and how they are split: {', '.join(PLACEMENT_KEYS)})"
                                + did_you_mean(key, [k for k in PLACEMENT_KEYS if "*" not in k])))
            continue
        if key in _PATH_KEYS and isinstance(value, str) and value:
            value = str((path.parent / Path(value).expanduser()).absolute())
        values.append(SiteValue(key, value, str(path)))
    if issues:
        raise GridError(issues)
    return values


def site_values() -> list[SiteValue]:
    """The site file's values, then the environment's (later entries win)."""
    path = site_file()
    values = _file_values(path) if path is not None else []
    for env, key in ENV_KEYS.items():
        if os.environ.get(env):
            values.append(SiteValue(key, os.environ[env], f"${env}"))
    return values
