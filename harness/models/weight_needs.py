"""Which pre-trained files a set of jobs needs, where each would be found, and how to fetch the missing ones.

Read by ``harness preflight``, ``harness weights list|check`` and every ``harness run`` (dry runs too)
before anything runs: every missing weight of the whole plan in one message, never one per attempt.
The lookups are the loaders' own (``harness.models.weights``), without downloading anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.models.weights import MissingWeights, hf_source, local_dir_for, timm_hub_id, timm_weight_file

SITE_KEY = "model.weights_dir (harness.toml: [model] weights_dir = \"DIR\", or $HARNESS_WEIGHTS_DIR=DIR)"
_TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json", "vocab.json", "vocab.txt", "spiece.model")
_MODEL_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class WeightNeed:
    kind: str  # "text encoder" | "tokenizer" | "vision encoder"
    name: str  # the registered encoder name
    library_id: str  # hub id (text) or timm architecture.tag (vision)
    weights_dir: str | None

    @property
    def target(self) -> Path:
        return local_dir_for(self.name, self.weights_dir)

    def commands(self) -> list[str]:
        """Shell commands (run on a machine with internet) that put the files where the job looks."""
        if self.kind != "vision encoder":
            return [f"hf download {self.library_id} --local-dir {self.target}"]
        hub_id = timm_hub_id(self.library_id)[0] or f"timm/{self.library_id}"
        return [f"hf download {hub_id} --local-dir {self.target}",
                f"python -c \"import timm; timm.create_model('{self.library_id}', pretrained=True)\"  "
                "# or: fill the Hugging Face cache (HF_HOME) instead"]

    def label(self) -> str:
        return f"{self.kind} '{self.name}' ({self.library_id})"


def needs_of(jobs: Iterable[object]) -> list[WeightNeed]:
    """The pre-trained files of every job that loads weights (paper or rehearsal scale), each once."""
    from harness.models.vision_families import timm_name
    from harness.registry import TEXT_ENCODERS

    out: dict[tuple[str, str, str | None], WeightNeed] = {}
    for job in jobs:
        m = job.experiment.model  # type: ignore[attr-defined]
        if m.weights != "pretrained" or m.scale == "tiny":  # tiny: the zoo, built by harness run itself
            continue
        hf_id = TEXT_ENCODERS.get(m.text).meta.hf
        timm_id = timm_name(m.vision)
        for need in (WeightNeed("text encoder", m.text, hf_id, m.weights_dir),
                     WeightNeed("tokenizer", m.text, hf_id, m.weights_dir),
                     WeightNeed("vision encoder", m.vision, timm_id, m.weights_dir)):
            out.setdefault((need.kind, need.name, need.weights_dir), need)
    return list(out.values())


def locate(need: WeightNeed) -> str | None:
    """Where the loader would find ``need`` (a folder or a file), or None. Never downloads."""
    if need.kind == "vision encoder":
        try:
            return str(timm_weight_file(need.name, need.library_id, need.weights_dir, download=False))
        except MissingWeights:
            return None
    marker = "tokenizer_config.json" if need.kind == "tokenizer" else "config.json"
    source, _ = hf_source(need.name, need.library_id, need.weights_dir, marker=marker)
    if source != need.library_id:
        return source
    return _hf_cached(need.library_id, _TOKENIZER_FILES if need.kind == "tokenizer" else _MODEL_FILES)


def _hf_cached(repo: str, files: tuple[str, ...]) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    from harness.models.weights import hf_cache_dir

    cache = hf_cache_dir()
    if not isinstance(try_to_load_from_cache(repo, "config.json", cache_dir=cache), str) and files == _MODEL_FILES:
        return None
    for name in files:
        cached = try_to_load_from_cache(repo, name, cache_dir=cache)
        if isinstance(cached, str):
            return str(Path(cached).parent)
    return None


def missing_message(missing: list[WeightNeed]) -> str:
    """One message for every missing weight: what, the commands that fetch it, the site key to set."""
    lines = [f"{len(missing)} pre-trained weight(s) missing (no download happens at run time):"]
    for need in missing:
        lines.append(f"  - {need.label()}: expected in {need.target} or the Hugging Face cache")
        lines.extend(f"      {cmd}" for cmd in need.commands())
    lines.append(f"then point the jobs at the folder with {SITE_KEY}; model.weights: random trains from scratch "
                 "on purpose.")
    return "\n".join(lines)
