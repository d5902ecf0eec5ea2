"""train.compile and train.activation_checkpointing: per-block, result-preserving, placement only.

The compiled = eager test compiles with the ``aot_eager`` backend: TorchDynamo graph capture and
AOT autograd's forward/backward graphs of every block, exactly as ``inductor`` gets them, without
inductor's C++ code generation, which takes 90 s for one fusion layer on this 2-core CI machine
(measured under load). Inductor's own numerics are compared (compiled vs eager loss, same run) by
``benches/gpu_check.py``, on CPU with ``--smoke`` and in bf16 on a GPU.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch

from harness.models import build_model
from harness.models.config import ModelSpec
from harness.models.groups import param_groups
from harness.train import speed
from harness.train.loop import Trainer, TrainParts
from harness.train.random_batch import random_pretrain_batch
from harness.train.settings import TrainSettings

torch.set_num_threads(1)
STEPS = 20
TINY = ModelSpec(vision="clip-vit-224/16", text="roberta", scale="tiny", weights="random", hidden=32, heads=2,
                 fusion_layers=1, dropout=0.1)  # dropout on: the compiled blocks must draw the same masks


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(TINY, objectives=("mlm", "itm"), image_size=32)


def _train(**changes: Any) -> tuple[list[float], dict[str, Any], torch.nn.Module]:
    model = _model()
    data = [random_pretrain_batch(4, 32, int(model.text.vocab_size), text_len=12, seed=i) for i in range(STEPS)]
    settings = TrainSettings(
        stage="pretrain", task=None, seed=0, total_steps=STEPS, global_batch=4, per_device_batch=4, num_processes=1,
        accumulation=1, image_size=32, lrs={"pretrained": 1e-4, "random": 5e-4, "head": 5e-4}, log_every=1,
        checkpoint_at_end=False, objectives=("mlm", "itm"), **changes)
    parts = TrainParts(model=model, groups=param_groups(model), batches=lambda rank, world: iter(data))
    with tempfile.TemporaryDirectory() as tmp:
        result = Trainer(parts, settings, Path(tmp), "speed-test").run()
    return [r["value"] for r in result.history if r["metric"] == "loss"], result.stats, model


@pytest.fixture(scope="module")
def eager() -> list[float]:
    return _train(compile=False)[0]


def test_blocks_are_the_repeated_layers_of_each_tower() -> None:
    model = _model()
    names = {id(m): n for n, m in model.named_modules()}
    found = [names[id(b)] for b in speed.find_blocks(model)]
    assert found == ["vision.backbone.blocks.0", "vision.backbone.blocks.1",
                     "text.backbone.encoder.layer.0", "text.backbone.encoder.layer.1",
                     "fusion.text_layers.0", "fusion.image_layers.0"]


def test_compiled_blocks_train_like_eager_over_20_steps(eager: list[float]) -> None:
    import torch._dynamo

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    losses, stats, model = _train(compile=True, compile_backend="aot_eager")
    assert stats["compiled_blocks"] == 6
    # Dynamo really captured the blocks (one graph per distinct block class and shape) ...
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 3
    # ... in place: parameter names (checkpoints, optimizer groups) are those of the eager model.
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in _model().named_parameters()]
    assert len(losses) == STEPS
    torch.testing.assert_close(losses, eager, rtol=0, atol=1e-5)


def test_activation_checkpointing_recomputes_and_changes_nothing(eager: list[float]) -> None:
    calls = {"n": 0}
    original = speed.find_blocks

    def counting(model: torch.nn.Module, roots: tuple[str, ...] = speed.BLOCK_ROOTS) -> list[torch.nn.Module]:
        blocks = original(model, roots)
        # On a layer inside the block: the recomputation calls the block's forward, not the block.
        blocks[-1].ffn.register_forward_pre_hook(lambda *_: calls.__setitem__("n", calls["n"] + 1))
        return blocks

    speed.find_blocks = counting  # type: ignore[assignment]
    try:
        losses, stats, _ = _train(activation_checkpointing=True)
    finally:
        speed.find_blocks = original  # type: ignore[assignment]
    assert stats["checkpointed_blocks"] == 6
    # The image fusion layer runs in the MLM and the ITM forward, and once more in the ITM backward
    # (MLM's loss reads only the text stream: nothing flows back through the image layer).
    assert calls["n"] == 3 * STEPS
    torch.testing.assert_close(losses, eager, rtol=0, atol=1e-5)


def test_compiled_and_checkpointed_trains_like_eager(eager: list[float]) -> None:
    losses, stats, _ = _train(compile=True, compile_backend="aot_eager", activation_checkpointing=True)
    assert stats["compiled_blocks"] == stats["checkpointed_blocks"] == 6
    torch.testing.assert_close(losses, eager, rtol=0, atol=1e-5)


def test_compile_auto_means_gpu_only() -> None:
    assert speed.compile_enabled(None, torch.device("cuda")) is True
    assert speed.compile_enabled(None, torch.device("cpu")) is False
    assert speed.compile_enabled(True, torch.device("cpu")) is True
    assert speed.compile_enabled(False, torch.device("cuda")) is False


def test_every_timm_attention_is_fused_and_swin_computes_the_same() -> None:
    from harness.models.vision import build_vision_encoder
    from harness.registry import VISION_ENCODERS

    spec = ModelSpec(scale="tiny", weights="random")
    for entry in VISION_ENCODERS:
        encoder = build_vision_encoder(entry.name, spec=spec)
        flags = [m.fused_attn for m in encoder.modules() if hasattr(m, "fused_attn")]
        assert flags and all(flags), entry.name
    torch.manual_seed(0)
    swin = build_vision_encoder("swin-base-384", spec=spec).eval()
    pixels = torch.randn(2, 3, swin.image_size, swin.image_size)  # its tiny native size (96 px)
    fused = swin(pixels)
    for m in swin.modules():
        if hasattr(m, "fused_attn"):
            m.fused_attn = False  # timm's default for Swin: matmul + softmax
    torch.testing.assert_close(fused, swin(pixels), rtol=1e-5, atol=1e-5)


def test_mlm_loss_needs_no_host_sync_and_keeps_its_value() -> None:
    from harness.train.objectives.mlm import token_cross_entropy

    logits = torch.randn(2, 5, 7, requires_grad=True)
    labels = torch.tensor([[-100, 3, -100, 1, -100], [2, -100, -100, -100, 6]])
    keep = labels != -100
    expected = torch.nn.functional.cross_entropy(logits[keep], labels[keep])
    torch.testing.assert_close(token_cross_entropy(logits, labels), expected)
    none = token_cross_entropy(logits, torch.full_like(labels, -100))
    none.backward()
    assert none.item() == 0.0 and logits.grad is not None
