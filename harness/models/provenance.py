"""What a run was computed from beyond its spec: the inputs this install generates in code.

A run id hashes the job's spec, but two inputs of the local path are made by code, not named by the spec:
the tiny zoo's weights (their recipe hash names the zoo folder, :func:`harness.models.zoo.recipe_hash`) and
the synthetic benchmark (scenes, captions, questions, statements; :mod:`harness.data.synthetic`). An upgrade
that changes either would otherwise leave old results looking done. Each finished run records the stamp
of the inputs it used (``result.json`` → ``"inputs"``); ``harness run`` compares it with this install's
and calls a run whose stamp differs "stale": it is trained again, its old files kept aside.

Real data and real weights (the paper path) are files the user names: their stamp is empty.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Collection
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.spec.data import SyntheticSpec
    from harness.spec.schema import JobSpec

PROBE_SCENES = 48  # with 3 questions each, the rarest question type (5 % of draws) is missed once in ~1500


def uses_zoo(job: JobSpec) -> bool:
    """Whether the job loads tiny-zoo weights (a tiny model, pre-trained encoders, no copied zoo)."""
    model = job.experiment.model
    return model.scale == "tiny" and model.weights == "pretrained" and not model.weights_dir


def generated_inputs(job: JobSpec, only: Collection[str] | None = None) -> dict[str, str]:
    """The job's stamp: {"zoo": recipe hash} when it loads the tiny zoo, {"synthetic": digest} when it
    trains on the synthetic benchmark; {} for real data and weights. ``only`` limits it to those keys
    (the zoo's hash imports torch: a status check computes it only for runs that recorded one)."""
    stamp: dict[str, str] = {}
    if uses_zoo(job) and (only is None or "zoo" in only):
        stamp["zoo"] = _zoo_hash()
    data = job.experiment.data
    if data.source == "synthetic" and (only is None or "synthetic" in only):
        stamp["synthetic"] = synthetic_digest(data.synthetic.model_dump_json())
    return stamp


def _zoo_hash() -> str:  # not cached: HARNESS_ZOO_STEPS, which it covers, may change within a process
    from harness.models.zoo import recipe_hash

    return recipe_hash()


@functools.lru_cache(maxsize=8)
def synthetic_digest(spec_json: str) -> str:
    """A digest of the synthetic world this install generates for ``spec_json``: every text form of a probe
    of scenes and the pixels of a few (the splits come from the same generators). A few ms."""
    from harness.data.synthetic import captions_for, render_scenes, sample_scenes, scene_rng
    from harness.data.synthetic_tasks import (
        annotator_answers,
        answer_family,
        nlvr2_statement,
        snli_hypothesis,
        vqa_answers,
        vqa_questions,
    )
    from harness.spec.data import SyntheticSpec

    spec: SyntheticSpec = SyntheticSpec.model_validate_json(spec_json)
    rng = scene_rng(spec.seed, "provenance")
    scenes = sample_scenes(rng, PROBE_SCENES, spec.max_objects)
    texts = [spec_json, *vqa_answers(spec.max_objects)]
    for i, scene in enumerate(scenes):
        texts.extend(captions_for([scene], 2, rng)[0])
        for question, answer, qtype in vqa_questions(scene, rng, 3):
            votes = annotator_answers(answer, answer_family(qtype, answer, spec.max_objects), rng)
            texts.append(f"{question}\t{qtype}\t{' '.join(votes)}")
        statement, truth = nlvr2_statement(scene, scenes[(i + 1) % len(scenes)], rng)
        hypothesis, label = snli_hypothesis(scene, rng)
        texts.extend((f"{statement}\t{truth}", f"{hypothesis}\t{label}"))
    digest = hashlib.sha256("\n".join(texts).encode())
    digest.update(render_scenes(scenes[:4], 32, rng).tobytes())
    return digest.hexdigest()[:12]


def stale_note(job: JobSpec, recorded: object) -> str | None:
    """Why a finished run with the stamp ``recorded`` is stale here, or None when it is not: the stamps
    agree, or the run recorded none (a result written before stamps existed is trusted as before)."""
    if not isinstance(recorded, dict) or not recorded:
        return None
    current = generated_inputs(job, only=recorded)
    changed = [key for key, value in recorded.items() if key in current and current[key] != value]
    if not changed:
        return None
    what = "; ".join(f"{_WHAT[key]} {recorded[key]}, this install's is {current[key]}" for key in changed)
    return f"computed with other generated inputs ({what}): `harness run` trains it again"


_WHAT = {"zoo": "the tiny zoo was", "synthetic": "the synthetic data was"}
