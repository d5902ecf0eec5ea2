"""``resources.nodes > 1`` for real on one machine: two "nodes" on localhost, each a launcher process with the
SLURM environment a 2-node allocation with one GPU per node gives its task (node rank 0 and 1, node list
``localhost,node2``). The job entry derives the torch.distributed world from it — ranks, local ranks, world size,
master address = the first host of the node list — and the two processes rendezvous on 127.0.0.1 (gloo) and train
to the same losses as one process with the same global batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from train_jobs import finetune_job

from harness.spec.runs import write_spec
from harness.store import Store
from harness.train import run_job

LAUNCH = """
import os, sys
from harness.dispatch.entry import JobEntry
JobEntry(sys.argv[1], sys.argv[2], "harness.train:run_job")()
print("WORLD", os.environ["RANK"], os.environ["LOCAL_RANK"], os.environ["WORLD_SIZE"], os.environ["MASTER_ADDR"])
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def slurm_node_env(node: int, nodes: int, port: int) -> dict[str, str]:
    """What srun gives the one task on node ``node`` of an allocation of ``nodes`` nodes × 1 GPU."""
    return {"SUBMITIT_EXECUTOR": "slurm", "SLURM_JOB_ID": "4242", "SLURM_JOB_NUM_NODES": str(nodes),
            "SLURM_NNODES": str(nodes), "SLURM_NTASKS": str(nodes), "SLURM_NTASKS_PER_NODE": "1",
            "SLURM_JOB_NODELIST": "localhost,node2", "SLURM_NODEID": str(node), "SLURM_PROCID": str(node),
            "SLURM_LOCALID": "0", "SLURM_GPUS_ON_NODE": "1", "MASTER_PORT": str(port),
            "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}


def _curve(results: Path, run_id: str) -> list[float]:
    frame = Store(results).metrics(run_ids=[run_id])
    return frame[(frame["split"] == "train") & (frame["metric"] == "loss")].sort_values("step")["value"].tolist()


@pytest.mark.slow
def test_two_nodes_on_localhost_form_one_world_and_match_one_process(tmp_path: Path) -> None:
    # SNLI-VE: no per-process randomness in its samples (see test_train_ddp); 1 GPU per node, 2 nodes.
    job = finetune_job("snli-ve", steps=4, finetune={"per_device_batch": None},
                       train={"log_every": 1, "deterministic": True},
                       resources={"nodes": 2, "gpus_per_node": 1})
    one, two = tmp_path / "one", tmp_path / "two"
    write_spec(job, one)
    run_job(job, one)
    write_spec(job, two)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SUBMITIT_"))}
    launchers = [subprocess.Popen([sys.executable, "-c", LAUNCH, job.run_id, str(two)],
                                  env={**env, **slurm_node_env(node, 2, port)}, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for node in (0, 1)]
    outputs = [p.communicate(timeout=600) for p in launchers]
    for p, (_, err) in zip(launchers, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
    worlds = [next(line.split()[1:] for line in out.splitlines() if line.startswith("WORLD")) for out, _ in outputs]
    assert worlds == [["0", "0", "2", "localhost"], ["1", "0", "2", "localhost"]]
    summary = json.loads((two / "runs" / job.run_id / "result.json").read_text())
    assert summary["status"] == "done" and summary["stats"]["num_processes"] == 2
    assert summary["stats"]["per_device_batch"] == 4
    assert _curve(two, job.run_id) == pytest.approx(_curve(one, job.run_id), rel=1e-5)
