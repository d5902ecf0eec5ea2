"""Golden sbatch file: a paper-profile job (8 GPUs, one task per GPU) in a throttled array with a dependency.

The text comes from the same parameters the executor gives submitit, rendered by submitit's
own template. After an intended change, re-record with:

    HARNESS_RERECORD=1 .venv/bin/pytest tests/dispatch/test_slurm_golden.py

and review the diff of tests/dispatch/golden/paper_array.sbatch.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.dispatch.cluster import load_profile, resolve_request
from harness.dispatch.sbatch import job_name, sbatch_parameters, sbatch_text
from harness.spec.schema import ResourcesSpec

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden" / "paper_array.sbatch"
# The paper profile's resources (grids/*.yaml `profiles.paper.resources`), fixed here so the
# golden file changes only when the sbatch rendering does.
PAPER = ResourcesSpec(nodes=1, gpus_per_node=8, cpus_per_task=8, mem_gb=400, time_min=2880, requeues=3)


def paper_sbatch() -> str:
    profile = load_profile(HERE.parents[1] / "slurm" / "clusters" / "example-gpu.yaml")
    request = resolve_request(PAPER, profile)
    params = sbatch_parameters(request, profile, name=job_name("text_encoders", "finetune"))
    params["dependency"] = "afterok:4100:4101"
    return sbatch_text(params, "/shared/results/slurm/text_encoders/submitit", python="/opt/venv/bin/python",
                       array_size=6)


def test_paper_array_sbatch_matches_the_golden_file() -> None:
    text = paper_sbatch()
    if os.environ.get("HARNESS_RERECORD") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
    expected = GOLDEN.read_text()
    assert text == expected, f"sbatch text changed; re-record with HARNESS_RERECORD=1 if intended:\n{text}"
    # What the golden file must say, whatever else changes in submitit's template:
    for line in ("#SBATCH --array=0-5%6", "#SBATCH --dependency=afterok:4100:4101", "#SBATCH --gpus-per-node=8",
                 "#SBATCH --ntasks-per-node=8", "#SBATCH --time=2880", "#SBATCH --requeue",
                 "#SBATCH --partition=gpu", "#SBATCH --account=my-project", "module load cuda/12.1"):
        assert line in expected
