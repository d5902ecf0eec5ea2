"""Cluster profiles (where and how SLURM jobs run) and their checks against the live cluster.

A profile is a small YAML file (``slurm/clusters/<name>.yaml``) read into ``ClusterProfile``.
Keys it sets override the job's ``resources`` block; keys it leaves out take the job's:

    partition: debug          # None: the cluster's default partition
    account: null
    time_min: 30              # --time, minutes
    array_parallelism: 2      # at most this many tasks of one array run at once (%N)

``harness.dispatch.clusterinfo.check_requests`` compares resolved requests with what the live cluster
reports (partitions, GPUs per node, time limits, accounts, QOS, MaxArraySize) so that a bad request
fails there, naming the profile key, instead of pending forever in the queue. That module reads the
cluster and imports this one, never the other way round. Torch-free.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.errors import UserError

# Text that would run as shell if it reached the sbatch file: a new line starts a new command,
# ';' chains one, '$(' and '`' substitute one.
_SHELL_HAZARDS = (("\n", "a newline"), ("\r", "a carriage return"), (";", "';'"), ("$(", "'$('"), ("`", "a backtick"))
_SBATCH_KEY = re.compile(r"^[a-z][a-z0-9-]*$")


class ClusterError(UserError):
    """A cluster profile or request the cluster would refuse; ``str()`` lists every problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def shell_hazard(text: str) -> str | None:
    """What in ``text`` would inject shell into an sbatch file, or None when it is safe."""
    for needle, name in _SHELL_HAZARDS:
        if needle in text:
            return name
    return None


def check_shell_safe(text: str, where: str) -> None:
    """Raise ClusterError when ``text`` (from ``where``) would inject shell into an sbatch file."""
    hazard = shell_hazard(text)
    if hazard:
        raise ClusterError([f"{where}: {hazard} in {text!r} would run as shell in the sbatch file; remove it"])


class ClusterProfile(BaseModel):
    """Where jobs go and what they may ask for. Unset keys (None) take the job's resources."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time_min: int | None = Field(None, ge=1)
    gpus_per_node: int | None = Field(None, ge=0)
    cpus_per_task: int | None = Field(None, ge=1)
    mem_gb: float | None = Field(None, gt=0)
    constraint: str | None = None
    exclude: str | None = None
    # More sbatch options, each "--key=value" or "--flag", e.g. "--reservation=meter".
    extra: tuple[str, ...] = ()
    # Shell lines run before srun, one command each (module loads, conda activate).
    setup: tuple[str, ...] = ()
    max_array_size: int | None = Field(None, ge=1, description="split arrays at this size (≤ MaxArraySize)")
    array_parallelism: int | None = Field(None, ge=1, description="tasks of one array running at once (%N)")
    requeues: int | None = Field(None, ge=0, description="timeout requeues (preemption requeues are free)")
    signal_delay_s: int = Field(90, ge=1, description="USR2 this long before the time limit: checkpoint, requeue")
    # Where the profile came from, for error messages (not a YAML key).
    source: str = Field("<profile>", exclude=True)

    @field_validator("partition", "account", "qos", "constraint", "exclude")
    @classmethod
    def _one_line(cls, v: str | None) -> str | None:
        if v is not None:
            hazard = shell_hazard(v)
            if hazard:
                raise ValueError(f"{hazard} would run as shell in the sbatch file")
        return v

    @field_validator("setup")
    @classmethod
    def _setup(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for i, line in enumerate(v):
            hazard = shell_hazard(line)
            if hazard:
                raise ValueError(f"line {i}: {hazard} in {line!r}; give each command its own setup line")
        return v

    @field_validator("extra")
    @classmethod
    def _extra(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for option in v:
            parse_extra_option(option)
        return v

    def extra_parameters(self) -> dict[str, Any]:
        """``extra`` as submitit's ``additional_parameters`` (key → value, flags → True)."""
        return dict(parse_extra_option(option) for option in self.extra)


def parse_extra_option(option: str) -> tuple[str, Any]:
    """``"--reservation=meter"`` → ("reservation", "meter"); ``"--exclusive"`` → ("exclusive", True)."""
    text = option.strip()
    text = text.removeprefix("#SBATCH").strip()
    if not text.startswith("--"):
        raise ValueError(f"extra option {option!r}: expected '--key=value' or '--flag'")
    key, sep, value = text[2:].partition("=")
    if not _SBATCH_KEY.match(key):
        raise ValueError(f"extra option {option!r}: '{key}' is not an sbatch option name")
    hazard = shell_hazard(value)
    if hazard:
        raise ValueError(f"extra option {option!r}: {hazard} would run as shell in the sbatch file")
    return key.replace("-", "_"), (value if sep else True)


# ---- finding and loading profiles ---------------------------------------------------------


def profile_dirs() -> list[Path]:
    """Where profile names are looked up: ``$HARNESS_CLUSTERS``, the checkout's slurm/clusters, ./slurm/clusters."""
    dirs = []
    if os.environ.get("HARNESS_CLUSTERS"):
        dirs.append(Path(os.environ["HARNESS_CLUSTERS"]))
    dirs.append(Path(__file__).resolve().parents[2] / "slurm" / "clusters")
    dirs.append(Path.cwd() / "slurm" / "clusters")
    return dirs


def known_profiles() -> list[str]:
    names = {p.stem for d in profile_dirs() if d.is_dir() for p in d.glob("*.yaml")}
    return sorted(names)


def find_profile(name_or_path: str | os.PathLike[str]) -> Path:
    """A profile file: a path as given, else ``<name>.yaml`` in ``profile_dirs()``."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ClusterError([f"cluster profile {str(path)!r}: no such file"])
        return path
    for folder in profile_dirs():
        candidate = folder / f"{path.name}.yaml"
        if candidate.is_file():
            return candidate
    known = known_profiles()
    close = difflib.get_close_matches(str(name_or_path), known, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(known) or 'none'}"
    raise ClusterError([f"unknown cluster profile '{name_or_path}'{hint}"])


def load_profile(name_or_path: str | os.PathLike[str] | ClusterProfile) -> ClusterProfile:
    """Read and validate a profile; errors name the file and the key."""
    if isinstance(name_or_path, ClusterProfile):
        return name_or_path
    path = find_profile(name_or_path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ClusterError([f"{path}: not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise ClusterError([f"{path}: expected a mapping of profile keys, got {type(data).__name__}"])
    if "source" in data:
        raise ClusterError([f"{path}: source: unknown key"])
    try:
        return ClusterProfile.model_validate({**data, "source": str(path)})
    except ValidationError as exc:
        raise ClusterError([_profile_issue(path, err) for err in exc.errors()]) from None


def _profile_issue(path: Path, err: Any) -> str:
    key = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        close = difflib.get_close_matches(key, list(ClusterProfile.model_fields), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"{path}: {key}: unknown key{hint}"
    return f"{path}: {key}: {err['msg'].removeprefix('Value error, ')}"


# ---- what a job asks for ------------------------------------------------------------------


@dataclass(frozen=True)
class SlurmRequest:
    """One job's resolved request: its resources block with the profile's keys on top."""

    partition: str | None
    account: str | None
    qos: str | None
    time_min: int
    nodes: int
    gpus_per_node: int
    tasks_per_node: int
    cpus_per_task: int
    mem_gb: float
    constraint: str | None
    exclude: str | None
    requeues: int


def resolve_request(resources: Any, profile: ClusterProfile) -> SlurmRequest:
    """``resources`` is a job's ``ResourcesSpec``; multi-GPU jobs get one task per GPU."""

    def pick(key: str) -> Any:
        value = getattr(profile, key)
        return getattr(resources, key) if value is None else value

    gpus = int(pick("gpus_per_node"))
    return SlurmRequest(
        partition=profile.partition,
        account=profile.account,
        qos=profile.qos,
        time_min=int(pick("time_min")),
        nodes=int(resources.nodes),
        gpus_per_node=gpus,
        tasks_per_node=max(gpus, 1),
        cpus_per_task=int(pick("cpus_per_task")),
        mem_gb=float(pick("mem_gb")),
        constraint=profile.constraint,
        exclude=profile.exclude,
        requeues=int(pick("requeues")),
    )


def name_hint(name: str, known: Sequence[str] | frozenset[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(sorted(known))}"


__all__ = [
    "ClusterError",
    "ClusterProfile",
    "SlurmRequest",
    "check_shell_safe",
    "find_profile",
    "known_profiles",
    "load_profile",
    "name_hint",
    "resolve_request",
    "shell_hazard",
]
