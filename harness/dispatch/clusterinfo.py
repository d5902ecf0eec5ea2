"""What a live SLURM cluster offers, read from ``scontrol``/``sinfo``/``sacctmgr`` (torch-free).

``ClusterInfo.parse`` works on the commands' text (tests feed it canned text); ``query`` runs
them. ``refusals`` lists why the cluster would refuse a request, so that a bad request fails
before anything is submitted instead of pending forever; ``check_requests`` gathers them for a
profile's requests.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from harness.dispatch.cluster import ClusterError, ClusterProfile, SlurmRequest, name_hint


@dataclass(frozen=True)
class PartitionInfo:
    name: str
    default: bool
    max_time_min: int | None  # None: no limit
    nodes: int
    cpus_per_node: int  # the smallest node's, so a request that fits, fits anywhere
    mem_mb_per_node: int
    gpus_per_node: int  # the largest node's GPU GRES count (0: no GPUs)


@dataclass(frozen=True)
class ClusterInfo:
    """What a live cluster offers; ``parse`` takes the commands' text, ``query`` runs them."""

    partitions: dict[str, PartitionInfo]
    max_array_size: int
    accounts: frozenset[str] | None = None  # None: accounting did not answer, not checked
    qos: frozenset[str] | None = None

    COMMANDS = {
        "partitions": ["scontrol", "show", "partition", "-o"],
        "nodes": ["sinfo", "-h", "-N", "-o", "%R|%N|%c|%m|%G"],
        "config": ["scontrol", "show", "config"],
        "accounts": ["sacctmgr", "-nP", "show", "account", "format=account"],
        "qos": ["sacctmgr", "-nP", "show", "qos", "format=name"],
    }

    @classmethod
    def query(cls, timeout_s: float = 20.0) -> ClusterInfo:
        """Ask the cluster this machine talks to; ClusterError when ``sinfo``/``scontrol`` fail."""
        import subprocess

        texts: dict[str, str | None] = {}
        for key, cmd in cls.COMMANDS.items():
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                done = None
                error = str(exc)
            if done is not None and done.returncode == 0:
                texts[key] = done.stdout
                continue
            if key in ("accounts", "qos"):
                texts[key] = None
                continue
            error = done.stderr.strip() if done is not None else error
            raise ClusterError([f"no SLURM cluster answers: `{' '.join(cmd)}` failed: {error}"])
        return cls.parse(**texts)  # type: ignore[arg-type]

    @classmethod
    def parse(cls, partitions: str, nodes: str, config: str, accounts: str | None = None,
              qos: str | None = None) -> ClusterInfo:
        node_rows = [line.split("|") for line in nodes.splitlines() if line.count("|") == 4]
        parts: dict[str, PartitionInfo] = {}
        for line in partitions.splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            name = fields.get("PartitionName")
            if not name:
                continue
            rows = [r for r in node_rows if r[0].rstrip("*") == name]
            parts[name] = PartitionInfo(
                name=name,
                default=fields.get("Default") == "YES",
                max_time_min=parse_minutes(fields.get("MaxTime", "UNLIMITED")),
                nodes=int(fields.get("TotalNodes", len(rows)) or 0),
                cpus_per_node=min((int(r[2]) for r in rows), default=0),
                mem_mb_per_node=min((int(r[3].rstrip("+")) for r in rows), default=0),
                gpus_per_node=max((gres_gpus(r[4]) for r in rows), default=0),
            )
        match = re.search(r"^MaxArraySize\s*=\s*(\d+)", config, re.MULTILINE)
        return cls(
            partitions=parts,
            max_array_size=int(match.group(1)) if match else 1001,
            accounts=_names(accounts),
            qos=_names(qos),
        )

    def default_partition(self) -> PartitionInfo | None:
        return next((p for p in self.partitions.values() if p.default), None)

    def refusals(self, request: SlurmRequest, src: str) -> list[str]:
        """Every reason the cluster would refuse ``request`` (empty: it would accept it)."""
        if request.partition is None:
            part = self.default_partition()
            if part is None:
                return [f"{src}: partition: the cluster has no default partition; set one"]
        elif request.partition not in self.partitions:
            return [f"{src}: partition: unknown partition '{request.partition}'"
                    f"{name_hint(request.partition, list(self.partitions))}"]
        else:
            part = self.partitions[request.partition]
        where = f"partition '{part.name}'"
        out = []
        if request.gpus_per_node > 0 and part.gpus_per_node == 0:
            out.append(f"{src}: gpus_per_node: the job asks for {request.gpus_per_node} GPUs per node but {where} "
                       "has no GPUs; set gpus_per_node: 0 in the profile or pick a GPU partition")
        elif request.gpus_per_node > part.gpus_per_node:
            out.append(f"{src}: gpus_per_node: {request.gpus_per_node} GPUs per node asked, {where} nodes have "
                       f"{part.gpus_per_node}")
        if part.max_time_min is not None and request.time_min > part.max_time_min:
            out.append(f"{src}: time_min: {request.time_min} min asked, above the MaxTime of {where} "
                       f"({part.max_time_min} min)")
        cpus = request.cpus_per_task * request.tasks_per_node
        if part.cpus_per_node and cpus > part.cpus_per_node:
            out.append(f"{src}: cpus_per_task: {request.tasks_per_node} task(s) × {request.cpus_per_task} CPUs = "
                       f"{cpus} CPUs per node, {where} nodes have {part.cpus_per_node}")
        if part.mem_mb_per_node and request.mem_gb * 1024 > part.mem_mb_per_node:
            out.append(f"{src}: mem_gb: {request.mem_gb:g} GB per node asked, {where} nodes have "
                       f"{part.mem_mb_per_node / 1024:.1f} GB")
        if part.nodes and request.nodes > part.nodes:
            out.append(f"{src}: nodes: {request.nodes} nodes asked, {where} has {part.nodes}")
        return out


def _names(text: str | None) -> frozenset[str] | None:
    if text is None:
        return None
    return frozenset(line.split("|")[0].strip() for line in text.splitlines() if line.strip())


def parse_minutes(text: str) -> int | None:
    """Slurm time ("UNLIMITED", "30", "1:00:00", "2-00:00:00", "1-12") → minutes; None: no limit."""
    text = text.strip()
    if text.upper() in ("UNLIMITED", "INFINITE", "NONE", ""):
        return None
    days = 0
    if "-" in text:
        day_text, text = text.split("-", 1)
        days = int(day_text)
        parts = [int(p) for p in text.split(":")] + [0, 0]
        hours, minutes, seconds = parts[0], parts[1], parts[2]
    else:
        parts = [int(p) for p in text.split(":")]
        if len(parts) == 1:
            hours, minutes, seconds = 0, parts[0], 0
        elif len(parts) == 2:
            hours, minutes, seconds = 0, parts[0], parts[1]
        else:
            hours, minutes, seconds = parts[0], parts[1], parts[2]
    return days * 1440 + hours * 60 + minutes + (1 if seconds else 0)


def gres_gpus(gres: str) -> int:
    """GPU count in a GRES string: "gpu:2", "gpu:a100:4(S:0-1)", "gpu:2,shard:8" → 2, 4, 2; "(null)" → 0."""
    total = 0
    for item in gres.split(","):
        fields = item.split("(")[0].split(":")
        if fields[0] == "gpu" and len(fields) >= 2 and fields[-1].isdigit():
            total += int(fields[-1])
    return total




def cluster_answers() -> bool:
    """True when a Slurm controller answers ``sinfo`` with at least one node state."""
    import shutil
    import subprocess

    if shutil.which("sinfo") is None:
        return False
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and bool(done.stdout.strip())


def check_requests(profile: ClusterProfile, requests: Sequence[SlurmRequest], info: ClusterInfo) -> None:
    """Raise ClusterError listing every way ``requests`` would be refused by the cluster ``info``."""
    problems: list[str] = []
    src = profile.source
    if profile.account is not None and info.accounts is not None and profile.account not in info.accounts:
        hint = name_hint(profile.account, info.accounts)
        problems.append(f"{src}: account: unknown account '{profile.account}'{hint}")
    if profile.qos is not None and info.qos is not None and profile.qos not in info.qos:
        problems.append(f"{src}: qos: unknown QOS '{profile.qos}'{name_hint(profile.qos, info.qos)}")
    if profile.max_array_size is not None and profile.max_array_size > info.max_array_size:
        problems.append(f"{src}: max_array_size: {profile.max_array_size} is above the cluster's MaxArraySize "
                        f"{info.max_array_size}")
    for request in dict.fromkeys(requests):
        problems += info.refusals(request, src)
    if problems:
        raise ClusterError(list(dict.fromkeys(problems)))
