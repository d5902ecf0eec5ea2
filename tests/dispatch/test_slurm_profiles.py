"""Cluster profiles, cluster checks and array planning: bad input fails before anything is submitted.

No cluster needed: ``ClusterInfo.parse`` gets canned ``scontrol``/``sinfo``/``sacctmgr`` text.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from slurm_fakes import write_grid

from harness.cli import UserError
from harness.dispatch.cluster import ClusterError, ClusterProfile, load_profile, resolve_request
from harness.dispatch.clusterinfo import ClusterInfo, gres_gpus, parse_minutes
from harness.dispatch.sbatch import job_name, sbatch_parameters
from harness.dispatch.slurm import SlurmExecutor, plan_arrays
from harness.spec.schema import ResourcesSpec

REPO = Path(__file__).resolve().parents[2]

PARTITIONS = """\
PartitionName=cpu AllowGroups=ALL Default=YES MaxTime=UNLIMITED Nodes=n[1-2] TotalCPUs=64 TotalNodes=2
PartitionName=gpu AllowGroups=ALL Default=NO MaxTime=2-00:00:00 Nodes=g1 TotalCPUs=96 TotalNodes=1
PartitionName=short Default=NO MaxTime=00:30:00 Nodes=n1 TotalNodes=1
"""
NODES = """\
cpu*|n1|32|256000|(null)
cpu*|n2|32|256000|(null)
gpu|g1|96|1024000|gpu:a100:8(S:0-1)
short|n1|32|256000|(null)
"""
CONFIG = "ClusterName             = site\nMaxArraySize            = 1001\nMaxJobCount = 10000\n"


def canned_info(**overrides: str | None) -> ClusterInfo:
    texts = {"partitions": PARTITIONS, "nodes": NODES, "config": CONFIG, "accounts": "root\nmeter\n",
             "qos": "normal\nhigh\n"}
    texts.update(overrides)  # type: ignore[arg-type]
    return ClusterInfo.parse(**texts)  # type: ignore[arg-type]


def refusal(profile: ClusterProfile, resources: ResourcesSpec, info: ClusterInfo | None = None) -> str:
    from harness.dispatch.clusterinfo import check_requests

    with pytest.raises(ClusterError) as caught:
        check_requests(profile, [resolve_request(resources, profile)], info or canned_info())
    return str(caught.value)


def test_parse_reads_partitions_gpus_limits_and_accounts() -> None:
    info = canned_info()
    assert info.default_partition().name == "cpu"  # type: ignore[union-attr]
    assert info.partitions["gpu"].gpus_per_node == 8 and info.partitions["cpu"].gpus_per_node == 0
    assert info.partitions["gpu"].max_time_min == 2880 and info.partitions["cpu"].max_time_min is None
    assert info.partitions["short"].max_time_min == 30
    assert info.max_array_size == 1001 and info.accounts == {"root", "meter"}
    assert [parse_minutes(t) for t in ("30", "1:00:00", "1-12", "2-00:00:00", "INFINITE", "0:30")] == \
        [30, 60, 2160, 2880, None, 1]
    assert [gres_gpus(g) for g in ("(null)", "gpu:2", "gpu:a100:4(S:0-1)", "gpu:2,shard:8")] == [0, 2, 4, 2]


def test_a_request_that_fits_passes() -> None:
    from harness.dispatch.clusterinfo import check_requests

    profile = ClusterProfile(partition="gpu", account="meter", qos="high", source="ok.yaml")
    request = resolve_request(ResourcesSpec(gpus_per_node=8, cpus_per_task=10, mem_gb=400, time_min=2880), profile)
    assert request.tasks_per_node == 8  # one task per GPU
    check_requests(profile, [request], canned_info())


def test_unknown_partition_account_and_qos_are_named_with_hints() -> None:
    text = refusal(ClusterProfile(partition="gpus", account="metre", qos="urgent", source="site.yaml"),
                   ResourcesSpec())
    assert "site.yaml: partition: unknown partition 'gpus'; did you mean 'gpu'?" in text
    assert "site.yaml: account: unknown account 'metre'; did you mean 'meter'?" in text
    assert "site.yaml: qos: unknown QOS 'urgent'; known: high, normal" in text


def test_gpus_on_a_partition_without_gpus() -> None:
    text = refusal(ClusterProfile(source="cpu.yaml"), ResourcesSpec(gpus_per_node=8))
    assert "cpu.yaml: gpus_per_node: the job asks for 8 GPUs per node but partition 'cpu' has no GPUs" in text
    # more GPUs than a node of the GPU partition has
    assert "16 GPUs per node asked, partition 'gpu' nodes have 8" in refusal(
        ClusterProfile(partition="gpu", gpus_per_node=16, source="p.yaml"), ResourcesSpec())


def test_time_above_the_partition_limit() -> None:
    text = refusal(ClusterProfile(partition="short", source="s.yaml"), ResourcesSpec(time_min=45))
    assert "s.yaml: time_min: 45 min asked, above the MaxTime of partition 'short' (30 min)" in text


def test_cpus_memory_and_array_size_beyond_the_cluster() -> None:
    text = refusal(ClusterProfile(cpus_per_task=64, mem_gb=300, max_array_size=5000, source="big.yaml"),
                   ResourcesSpec())
    assert "big.yaml: cpus_per_task: 1 task(s) × 64 CPUs = 64 CPUs per node, partition 'cpu' nodes have 32" in text
    assert "big.yaml: mem_gb: 300 GB per node asked" in text
    assert "big.yaml: max_array_size: 5000 is above the cluster's MaxArraySize 1001" in text


def test_unknown_profile_key_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text("partition: debug\ntime_mins: 30\ngpus_per_node: two\n")
    with pytest.raises(ClusterError) as caught:
        load_profile(path)
    text = str(caught.value)
    assert f"{path}: time_mins: unknown key; did you mean 'time_min'?" in text
    assert f"{path}: gpus_per_node:" in text
    assert isinstance(caught.value, UserError)  # the CLI prints it and exits 2


def test_unknown_profile_name_suggests_a_known_one() -> None:
    with pytest.raises(ClusterError, match="unknown cluster profile 'locl'; did you mean 'local'"):
        load_profile("locl")
    assert load_profile("local").partition == "debug"
    assert load_profile(REPO / "slurm" / "clusters" / "example-gpu.yaml").max_array_size == 500


@pytest.mark.parametrize(
    ("yaml_text", "needle"),
    [
        ("setup:\n  - module load cuda; rm -rf /\n", "';'"),
        ("setup:\n  - echo $(whoami)\n", "'$('"),
        ("partition: \"debug\\nsrun evil\"\n", "a newline"),
        ("constraint: \"a100`id`\"\n", "a backtick"),
        ("extra:\n  - --comment=x;reboot\n", "';'"),
        ("extra:\n  - reservation=meter\n", "expected '--key=value'"),
    ],
)
def test_shell_injection_in_a_profile_is_refused(tmp_path: Path, yaml_text: str, needle: str) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ClusterError) as caught:
        load_profile(path)
    assert str(path) in str(caught.value) and needle in str(caught.value)


def test_shell_injection_from_a_grid_name_is_refused() -> None:
    with pytest.raises(ClusterError, match="grid 'x;reboot'.*';'"):
        job_name("x;reboot", "pretrain")
    profile = ClusterProfile(source="p.yaml")
    request = resolve_request(ResourcesSpec(), profile)
    with pytest.raises(ClusterError, match="--job-name.*a newline"):
        sbatch_parameters(request, profile, name="meter-a\nreboot-pretrain")


def test_arrays_group_by_stage_and_request_and_split_at_max_size(tmp_path: Path) -> None:
    from harness.spec.compile import compile_grid

    jobs = compile_grid(write_grid(tmp_path, levels="bert, roberta, electra")).jobs
    profile = ClusterProfile(source="p.yaml")
    plans = plan_arrays(jobs, profile, max_size=2)
    assert [(p.stage, len(p.jobs)) for p in plans] == [("pretrain", 2), ("pretrain", 1), ("finetune", 2),
                                                       ("finetune", 1)]
    pretrain_first = sorted(jobs, key=lambda j: j.stage != "pretrain")
    assert [j.run_id for p in plans for j in p.jobs] == [j.run_id for j in pretrain_first]


def test_submit_checks_everything_before_submitting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.spec.compile import compile_grid

    jobs = compile_grid(write_grid(tmp_path)).jobs
    bigger = [j.model_copy(update={"experiment": j.experiment.model_copy(update={
        "resources": ResourcesSpec(gpus_per_node=2)})}) for j in jobs]
    calls: list[str] = []
    monkeypatch.setattr("submitit.SlurmExecutor.__init__", lambda *a, **k: calls.append("submitit"))
    ex = SlurmExecutor(ClusterProfile(source="cpu.yaml"), "slurm_fakes:quick_job", info=canned_info())
    with pytest.raises(ClusterError, match="has no GPUs"):
        ex.submit(bigger, tmp_path / "results")
    assert calls == [] and not (tmp_path / "results").exists()
