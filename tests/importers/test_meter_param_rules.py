"""LR group and weight decay of every parameter of METER-CLIP-ViT-B/16 + RoBERTa under
``optim.param_rules: meter`` equal METER's ``set_schedule``.

``golden/meter_clip16_roberta_set_schedule.json`` was written by ``tools/meter_golden.py --preset
paper --schedule``: METER's own ``set_schedule`` run on METER's model (random weights, every head),
one row per METER parameter: its LR group (base / cross_modal / head) and whether it is decayed.
Each harness parameter is matched to its METER name(s) by the importer's name table.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from harness.importers.meter_keys import UNUSED_METER_KEYS, meter_source
from harness.models import build_model
from harness.models.config import ModelSpec
from harness.models.groups import param_groups
from harness.train.optim import weight_decay_rule

GOLDEN = Path(__file__).parent / "golden" / "meter_clip16_roberta_set_schedule.json"
# harness LR group → METER's set_schedule group
GROUP = {"pretrained": "base", "random": "cross_modal", "head": "head"}
TASKS = {"vqa": {"num_answers": 3129}, "nlvr2": {}, "snli-ve": {}, "retrieval": {}}


@pytest.fixture(scope="module")
def paper_model() -> torch.nn.Module:
    spec = ModelSpec(vision="clip-vit-224/16", text="roberta", scale="paper", weights="random")
    with torch.device("cpu"):
        return build_model(spec, objectives=("mlm", "itm"), tasks=TASKS, image_size=288)


def _rules(model: torch.nn.Module, rules: str) -> dict[str, tuple[str, bool]]:
    """METER name → (group, decayed) of the harness parameter it maps to."""
    decays = weight_decay_rule(model, rules)
    out: dict[str, tuple[str, bool]] = {}
    for group, params in param_groups(model, rules).items():
        for name, param in params:
            source = meter_source(name)
            assert source is not None, f"{name} has no METER counterpart"
            for meter_name in source.meter:
                out[meter_name] = (GROUP[group], decays(param))
    return out


def _golden() -> dict[str, tuple[str, bool]]:
    rows = json.loads(GOLDEN.read_text())
    return {r["name"]: (r["lr"], r["weight_decay"]) for r in rows if not UNUSED_METER_KEYS.match(r["name"])}


def test_meter_rules_equal_meters_set_schedule(paper_model: torch.nn.Module) -> None:
    ours, meter = _rules(paper_model, "meter"), _golden()
    assert len(meter) > 600
    assert set(ours) == set(meter)
    differ = {k: (ours[k], meter[k]) for k in meter if ours[k] != meter[k]}
    assert not differ, dict(list(differ.items())[:10])


def test_harness_rules_differ_from_meter_exactly_where_documented(paper_model: torch.nn.Module) -> None:
    ours, meter = _rules(paper_model, "harness"), _golden()
    differ = sorted(k for k in meter if ours[k] != meter[k])
    # token-type embedding and rank head: ×lr_ratio / ×head_mult here; norm gains of CLIP and the task MLPs:
    # no decay here (the fidelity document's rows 1-3)
    assert "token_type_embeddings.weight" in differ and "rank_output.weight" in differ
    assert "vit_model.visual.ln_pre.weight" in differ and "vqa_classifier.1.weight" in differ
    assert all(k.startswith(("token_type", "rank_output", "vit_model.visual")) or "classifier.1." in k
               for k in differ), differ
