"""AdamW over the model's LR groups, and the warm-up + decay schedule in optimizer steps.

Weight decay (``rules="harness"``) is decided by what a parameter *is*, not by its name:
vectors (biases, norm gains) and anything owned by a normalisation layer get none. METER
matched names, which silently misses renamed modules: its list (``bias``, ``LayerNorm.*``,
``norm.*``, ``norm1/2.*``) misses CLIP's ``ln_*`` gains and the task MLPs' ``classifier.1``
LayerNorm, which it therefore decays. ``rules="meter"`` reproduces that by declaration: a
module with ``meter_decays_norms = True`` has the gains of its norm layers decayed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

GROUP_NAMES = ("pretrained", "random", "head")
_NORMS: tuple[type[nn.Module], ...] = (
    nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm,
    nn.modules.batchnorm._NormBase,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)


def _norm_parameters(model: nn.Module) -> set[int]:
    """ids of parameters that belong directly to a normalisation module."""
    ids: set[int] = set()
    for module in model.modules():
        if isinstance(module, _NORMS) or type(module).__name__.lower().endswith(("layernorm", "rmsnorm")):
            ids.update(id(p) for p in module.parameters(recurse=False))
    return ids


def decays(param: nn.Parameter, norm_ids: set[int]) -> bool:
    """Whether AdamW should decay this parameter: matrices and up, outside norm layers."""
    return param.ndim >= 2 and id(param) not in norm_ids


def meter_no_decay(model: nn.Module) -> set[int]:
    """ids of the parameters METER's ``set_schedule`` exempts from weight decay: biases (any
    parameter whose own name holds "bias", as its substring rule does: Swin's relative position
    bias table too) and the gains of norm layers, except under a module that declares
    ``meter_decays_norms = True`` (METER's CLIP tower, its task MLPs)."""
    exempt: set[int] = set()

    def walk(module: nn.Module, decays_norms: bool) -> None:
        decays_norms = bool(getattr(module, "meter_decays_norms", decays_norms))
        is_norm = isinstance(module, _NORMS) or type(module).__name__.lower().endswith(("layernorm", "rmsnorm"))
        for name, param in module.named_parameters(recurse=False):
            if "bias" in name or (is_norm and not decays_norms):
                exempt.add(id(param))
        for child in module.children():
            walk(child, decays_norms)

    walk(model, False)
    return exempt


def optimizer_groups(
    model: nn.Module,
    groups: dict[str, list[tuple[str, nn.Parameter]]],
    lrs: dict[str, float],
    weight_decay: float,
    rules: str = "harness",
) -> list[dict]:
    """torch param groups, two per LR group (decay / no decay), each tagged with ``group``.

    Every trainable parameter of ``model`` must be in exactly one LR group: a parameter in
    none would silently train at some default rate (METER's retrieval head did).
    """
    decide = weight_decay_rule(model, rules)
    seen: dict[int, str] = {}
    out: list[dict] = []
    for group in GROUP_NAMES:
        decay: list[Any] = []
        no_decay: list[Any] = []
        for name, param in groups.get(group, []):
            if not param.requires_grad:
                continue
            if id(param) in seen:
                raise ValueError(f"parameter '{name}' is in LR groups '{seen[id(param)]}' and '{group}'")
            seen[id(param)] = group
            (decay if decide(param) else no_decay).append(param)
        for params, wd, suffix in ((decay, weight_decay, "decay"), (no_decay, 0.0, "no_decay")):
            if params:
                out.append({"params": params, "lr": lrs[group], "initial_lr": lrs[group],
                            "weight_decay": wd, "group": group, "name": f"{group}/{suffix}"})
    unknown = set(groups) - set(GROUP_NAMES)
    if unknown:
        raise ValueError(f"unknown LR groups {sorted(unknown)}; expected {list(GROUP_NAMES)}")
    missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in seen]
    if missing:
        raise ValueError(f"{len(missing)} trainable parameter(s) are in no LR group, e.g. {missing[:3]}")
    return out


def weight_decay_rule(model: nn.Module, rules: str = "harness") -> Callable[[nn.Parameter], bool]:
    """parameter → whether AdamW decays it, under ``rules`` ("harness" or "meter")."""
    if rules == "meter":
        exempt = meter_no_decay(model)
        return lambda param: id(param) not in exempt
    if rules != "harness":
        raise ValueError(f"unknown parameter rules '{rules}'; expected 'harness' or 'meter'")
    norm_ids = _norm_parameters(model)
    return lambda param: decays(param, norm_ids)


class MeterAdamW(torch.optim.Optimizer):
    """The AdamW update of METER's optimizer (transformers 4.x ``AdamW``, which METER's set_schedule
    builds): ε is added to sqrt(v) before the bias correction, which is folded into the step size,
    and weight decay is applied after the Adam step, to the updated weights. ``torch.optim.AdamW``
    decays first and adds ε after the correction; the two differ at the ε·lr level."""

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-6, weight_decay: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                state["step"] += 1
                step = float(state["step"])
                state["exp_avg"].mul_(beta1).add_(param.grad, alpha=1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(param.grad, param.grad, value=1 - beta2)
                denom = state["exp_avg_sq"].sqrt().add_(group["eps"])
                step_size = group["lr"] * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
                param.addcdiv_(state["exp_avg"], denom, value=-step_size)
                if group["weight_decay"] > 0:
                    param.add_(param, alpha=-group["lr"] * group["weight_decay"])
        return loss


def build_optimizer(
    model: nn.Module,
    groups: dict[str, list[tuple[str, nn.Parameter]]],
    lrs: dict[str, float],
    *,
    weight_decay: float,
    betas: tuple[float, float],
    eps: float,
    fused: bool = False,
    rules: str = "harness",
    adamw: str = "torch",
) -> torch.optim.Optimizer:
    """``fused``: one kernel for the whole update (GPU: ~3× faster than the per-tensor loop; CPU, tiny
    models: ~7×, which is ~15 % of a local training step)."""
    param_groups = optimizer_groups(model, groups, lrs, weight_decay, rules)
    if adamw == "meter":
        return MeterAdamW(param_groups, betas=betas, eps=eps, weight_decay=weight_decay)
    if adamw != "torch":
        raise ValueError(f"unknown AdamW '{adamw}'; expected 'torch' or 'meter'")
    return torch.optim.AdamW(param_groups, betas=betas, eps=eps, weight_decay=weight_decay, fused=fused or None)


def fused_adamw(device: torch.device) -> bool:
    """Whether the trainer runs AdamW fused on ``device`` (benches build their bare loop's the same way)."""
    return device.type in ("cuda", "cpu")


def lr_factor(step: int, total: int, warmup_ratio: float, decay: str) -> float:
    """LR multiplier for optimizer step ``step`` (0-based) of ``total``: warm-up, then decay to 0.

    METER's schedule exactly (transformers' polynomial-decay/cosine schedules with warm-up, as its
    ``set_schedule`` builds them): ``int(warmup_ratio × total)`` warm-up steps, step k at k / warmup —
    the first step at LR 0 — then linear (or cosine) decay to 0 at ``total``."""
    warmup = int(warmup_ratio * total)
    if step < warmup:
        return step / warmup
    if decay == "constant":
        return 1.0
    remaining = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / remaining)
    if decay == "linear":
        return 1.0 - progress
    if decay == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown LR decay '{decay}'; expected linear, cosine or constant")


def build_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_ratio: float, decay: str
) -> torch.optim.lr_scheduler.LambdaLR:
    """Step it once per *optimizer* step (not per micro-batch) so accumulation does not stretch it."""
    lr_factor(0, total_steps, warmup_ratio, decay)  # fail early on a bad decay name
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, warmup_ratio, decay)
    )


def current_lrs(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """LR of each LR group now (the decay and no-decay halves share it)."""
    return {g["group"]: float(g["lr"]) for g in optimizer.param_groups}


def trainable(parameters: Iterable[nn.Parameter]) -> int:
    return sum(p.numel() for p in parameters if p.requires_grad)
