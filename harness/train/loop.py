"""The training loop: Accelerate, accumulation, logging, evaluation, checkpoints, resume.

Everything job-specific (model, data, evaluation) comes in as ``TrainParts``, so this loop
is the same for pre-training and every task, and tests drive it with tiny stand-ins.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.progress import progress_bar
from harness.train import checkpoint, speed
from harness.train.errors import StopTraining, TrainingFailed
from harness.train.flops import mfu, peak_flops, peak_memory_mb
from harness.train.interrupt import Interrupt
from harness.train.optim import build_optimizer, build_scheduler, current_lrs, fused_adamw
from harness.train.record import ProgressFile
from harness.train.settings import TrainSettings
from harness.train.tracking import Trackers

MetricRow = tuple[str, str, str, float]  # (task, split, metric, value)


@dataclass
class TrainParts:
    """What the loop trains and how it evaluates; built by ``harness.train.job`` or a test."""

    model: nn.Module
    groups: dict[str, list[tuple[str, nn.Parameter]]]
    # (process_index, num_processes) → this process's micro-batches, in a fixed order for a seed.
    batches: Callable[[int, int], Iterable[dict[str, Any]]]
    # The unwrapped model → metric rows; runs on every process, which must all get the same rows.
    evaluate: Callable[[nn.Module], list[MetricRow]] | None = None
    # (model outputs, batch) → extra scalar train metrics, e.g. {"acc/itm": tensor}.
    step_metrics: Callable[[dict[str, Any], dict[str, Any]], dict[str, torch.Tensor]] | None = None
    # (model, one micro-batch) → training FLOPs per sample.
    flops_per_sample: Callable[[nn.Module, dict[str, Any]], float] | None = None


@dataclass
class LoopResult:
    status: str  # "done" | "pruned"
    step: int
    history: list[dict[str, Any]]
    final_metrics: dict[str, float]
    stats: dict[str, Any]
    reason: str | None = None
    # {"step": k, "checkpoint": path} when this attempt resumed from a checkpoint, else None.
    resumed_from: dict[str, Any] | None = None
    accelerator: Any = None
    model: nn.Module | None = field(default=None, repr=False)


def to_device(batch: Any, device: torch.device) -> Any:
    if device.type == "cpu":  # loaders yield CPU tensors: nothing to move, and the walk costs ~0.5 ms a step
        return batch
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


def make_accelerator(settings: TrainSettings, run_dir: Path) -> Any:
    """A fresh Accelerator (state reset: a process may train several jobs, e.g. in tests)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    if settings.precision == "fp16" and not torch.cuda.is_available():
        raise TrainingFailed("train.precision fp16 needs a GPU; use fp32 (or bf16) on CPU")
    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    mixed = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[settings.precision]
    return Accelerator(mixed_precision=mixed, gradient_accumulation_steps=settings.accumulation,
                       cpu=not torch.cuda.is_available())


def oom_message(settings: TrainSettings) -> str:
    smaller = max(1, settings.per_device_batch // 2)
    return (f"out of memory at per_device_batch={settings.per_device_batch}; try per_device_batch={smaller} "
            f"(accumulation then becomes {settings.accumulation * settings.per_device_batch // smaller} "
            f"for the same global batch {settings.global_batch})")


class _Window:
    """Per-step values between two log steps (kept in checkpoints so resume logs the same).

    The step's losses stay on the device until ``settle`` fetches the whole window in one transfer:
    reading a loss every step would make the host wait for the device every step (no overlap of the
    next step's launch with this one's kernels). ``settle`` runs at each log step and before every
    evaluation and checkpoint; it also finds the first non-finite loss, by its step.
    """

    def __init__(self, saved: dict[str, Any] | None = None) -> None:
        saved = saved or {}
        self.sums: dict[str, float] = dict(saved.get("sums", {}))
        self.steps: int = saved.get("steps", 0)
        self.time_s: float = saved.get("time_s", 0.0)
        self.pending: list[tuple[int, list[str], torch.Tensor]] = []

    def add(self, step: int, values: dict[str, Any], seconds: float) -> None:
        """``values``: the step's device tensors (fetched later) and host floats (the LRs)."""
        names = sorted(k for k, v in values.items() if isinstance(v, torch.Tensor))
        if names:
            self.pending.append((step, names, torch.stack([values[k].detach().float() for k in names])))
        for k, v in values.items():
            if not isinstance(v, torch.Tensor):
                self.sums[k] = self.sums.get(k, 0.0) + float(v)
        self.steps += 1
        self.time_s += seconds

    def settle(self) -> None:
        """Fetch the pending values (one device→host copy); the wait counts as training time."""
        if not self.pending:
            return
        started = time.perf_counter()
        rows = [t.tolist() for t in torch.cat([t for _, _, t in self.pending]).cpu().split(
            [len(n) for _, n, _ in self.pending])]
        self.time_s += time.perf_counter() - started
        pending, self.pending = self.pending, []
        for (step, names, _), row in zip(pending, rows, strict=True):
            values = dict(zip(names, row, strict=True))
            if not math.isfinite(values["loss"]):
                shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items() if k.startswith("loss"))
                raise TrainingFailed(f"non-finite loss at step {step}: {shown}")
            for k, v in values.items():
                self.sums[k] = self.sums.get(k, 0.0) + v

    def means(self) -> dict[str, float]:
        self.settle()
        return {k: v / max(1, self.steps) for k, v in self.sums.items()}

    def state(self) -> dict[str, Any]:
        self.settle()
        return {"sums": self.sums, "steps": self.steps, "time_s": self.time_s}


class Trainer:
    """One job's training run over ``TrainParts``; ``run()`` returns a ``LoopResult``."""

    def __init__(self, parts: TrainParts, settings: TrainSettings, run_dir: Path, run_id: str,
                 on_eval: Callable[[int, dict[str, float]], None] | None = None,
                 interrupt: Interrupt | None = None) -> None:
        self.parts, self.s, self.run_dir, self.run_id = parts, settings, run_dir, run_id
        self.on_eval, self.interrupt = on_eval, interrupt
        self.accelerator = make_accelerator(settings, run_dir)
        self.main = self.accelerator.is_main_process
        self.trackers = Trackers((), None, self.main)
        self.state: dict[str, Any] = {"step": 0, "history": [], "window": {}, "train_time_s": 0.0,
                                      "samples": 0, "flops_per_sample": None}
        self.resumed_from: dict[str, Any] | None = None
        self.speedups: dict[str, int] = {}

    # ----- setup ---------------------------------------------------------------------------------
    def _prepare(self) -> Iterator[dict[str, Any]]:
        acc, s = self.accelerator, self.s
        model = self.parts.model.to(acc.device)
        batches = iter(self.parts.batches(acc.process_index, acc.num_processes))
        found = checkpoint.latest(self.run_dir / "checkpoints", echo=self.main)
        resume_step = checkpoint.read_state(found[1])["step"] if found else 0
        # Skip what was consumed before the checkpoint, before restoring RNG states (the skip
        # must not shift any random stream the training steps use).
        skipped = sum(1 for _ in islice(batches, resume_step * s.accumulation))
        if skipped < resume_step * s.accumulation:
            raise TrainingFailed(f"data ran out while skipping {resume_step} steps to resume")
        first = next(batches, None)
        if first is None:
            raise TrainingFailed("the training data yielded no batch")
        if self.parts.flops_per_sample is not None:
            self.state["flops_per_sample"] = self.parts.flops_per_sample(model, to_device(first, acc.device))
        if acc.num_processes > 1 and _has_unused_parameters(model, to_device(first, acc.device)):
            from accelerate.utils import DistributedDataParallelKwargs

            acc.ddp_handler = DistributedDataParallelKwargs(find_unused_parameters=True)
        self.speedups = speed.apply(model, compile=speed.compile_enabled(s.compile, acc.device),
                                    activation_checkpointing=s.activation_checkpointing, backend=s.compile_backend)
        optimizer = build_optimizer(model, self.parts.groups, s.lrs, weight_decay=s.weight_decay,
                                    betas=s.betas, eps=s.eps, fused=fused_adamw(acc.device),
                                    rules=s.param_rules, adamw=s.adamw)
        self.scheduler = build_scheduler(optimizer, s.total_steps, s.warmup_ratio, s.decay)
        self.model, self.optimizer = acc.prepare(model, optimizer)
        acc.register_for_checkpointing(self.scheduler)
        if found:
            flops = self.state["flops_per_sample"]
            self.state = checkpoint.load(acc, found[1])
            self.state["flops_per_sample"] = self.state.get("flops_per_sample") or flops
            self.resumed_from = {"step": int(self.state["step"]), "checkpoint": str(found[1])}
            if self.main:  # the resumed trainer's own word, for the job's log
                print(f"resumed from step {self.state['step']} of {s.total_steps} (checkpoint {found[1]})",
                      flush=True)
        # Opened after the checkpoint is loaded: a resumed W&B run continues at the restored step.
        self.trackers = Trackers(s.trackers, s.tracked, self.main)
        self.optimizer_step = _optimizer_step(acc, self.optimizer)
        self.backward = _backward(acc)
        return _chain_first(first, batches)

    # ----- one optimizer step ----------------------------------------------------------------------
    def _step(self, batches: Iterator[dict[str, Any]]) -> dict[str, Any]:
        acc, s = self.accelerator, self.s
        lrs = current_lrs(self.optimizer)
        totals: dict[str, torch.Tensor] = {}
        for micro in range(s.accumulation):
            batch = next(batches, None)
            if batch is None:
                raise TrainingFailed(f"the training data ran out at step {self.state['step']}")
            batch = to_device(batch, acc.device)
            with acc.accumulate(self.model):
                out = self.model(batch)
                self.backward(out["loss"])
                if acc.sync_gradients != (micro == s.accumulation - 1):
                    raise RuntimeError("gradient accumulation went out of step with the micro-batches")
                if acc.sync_gradients:
                    if s.grad_clip is not None:
                        acc.clip_grad_norm_(self.model.parameters(), s.grad_clip)
                    self.optimizer_step()
                    self.scheduler.step()
                    # Accelerate's zero_grad does exactly this at a sync step (and nothing between),
                    # after an inspect.signature call on every step.
                    self.optimizer.optimizer.zero_grad(set_to_none=True)
            values = {k: v.detach().float() for k, v in out.items() if k == "loss" or k.startswith("loss/")}
            if self.parts.step_metrics is not None:
                values.update({k: v.detach().float() for k, v in self.parts.step_metrics(out, batch).items()})
            for k, v in values.items():
                totals[k] = totals[k] + v if k in totals else v
        names = sorted(totals)
        stacked = torch.stack([totals[k] for k in names]) / s.accumulation  # one division, not one per value
        if acc.num_processes > 1:
            stacked = acc.reduce(stacked, reduction="mean")
        # Device tensors: the window fetches them when it logs (no host sync inside the step).
        result: dict[str, Any] = dict(zip(names, stacked.unbind(0), strict=True))
        result.update({f"lr/{g}": lr for g, lr in lrs.items()})
        return result

    # ----- logging, evaluation -----------------------------------------------------------------------
    def _rows(self, task: str | None, split: str, metrics: dict[str, float], step: int) -> list[dict[str, Any]]:
        return [{"stage": self.s.stage, "task": task, "split": split, "metric": k, "value": float(v), "step": step}
                for k, v in metrics.items()]

    def _log(self, window: _Window, step: int, progress: ProgressFile | None) -> float:
        """Record the window's means; the mean loss (for the progress bar)."""
        means = window.means()
        steps_time = window.time_s / max(1, window.steps)
        means["step_time_s"] = steps_time
        means["samples_per_s"] = self.s.global_batch / steps_time if steps_time > 0 else 0.0
        self.state["history"] += self._rows(self.s.task or "pretrain", "train", means, step)
        self.trackers.log({f"train/{k}": v for k, v in means.items()}, step)
        if progress is not None:
            progress.write("running", step, loss=means.get("loss"), metrics=self._last_eval())
        return float(means["loss"])

    def _last_eval(self) -> dict[str, float]:
        """The latest evaluation's metrics, for progress.json."""
        evals = [r for r in self.state["history"] if r["split"] != "train"]
        if not evals:
            return {}
        return {f"{r['split']}/{r['metric']}": r["value"] for r in evals if r["step"] == evals[-1]["step"]}

    def _evaluate(self, step: int) -> dict[str, float]:
        """Every process evaluates its shard (see harness.train.dist); ``{"<split>/<metric>": value}``."""
        acc = self.accelerator
        metrics: dict[str, float] = {}
        if self.parts.evaluate is not None:
            with acc.autocast():
                rows = self.parts.evaluate(acc.unwrap_model(self.model))
            for task, split, metric, value in rows:
                self.state["history"] += self._rows(task, split, {metric: value}, step)
                metrics[f"{split}/{metric}"] = float(value)
        self.trackers.log(metrics, step)
        return metrics

    def _intermediate_eval(self, step: int) -> str | None:
        """Evaluate, call ``on_eval``; the reason to stop (pruned) or None, agreed by all processes."""
        from accelerate.utils import broadcast_object_list

        metrics = self._evaluate(step)
        reason: list[str | None] = [None]
        if self.main and self.on_eval is not None:
            try:
                self.on_eval(step, metrics)
            except StopTraining as stop:
                reason[0] = stop.reason
        if self.accelerator.num_processes > 1:
            broadcast_object_list(reason)
        return reason[0]

    # ----- the loop ------------------------------------------------------------------------------------
    def run(self) -> LoopResult:
        s, acc = self.s, self.accelerator
        batches = self._prepare()
        step = start_step = self.state["step"]
        window = _Window(self.state.get("window"))
        progress = ProgressFile(self.run_dir, self.run_id, s.total_steps, self.resumed_from) if self.main else None
        if progress is not None:
            progress.write("running", step)
        bar = progress_bar(s.total_steps, step, disable=not self.main)
        self.model.train()
        attempt_time, attempt_steps = 0.0, 0
        try:
            while step < s.total_steps:
                t0 = time.perf_counter()
                try:
                    values = self._step(batches)
                except torch.cuda.OutOfMemoryError as exc:
                    raise TrainingFailed(oom_message(s)) from exc
                seconds = time.perf_counter() - t0
                step += 1
                attempt_time, attempt_steps = attempt_time + seconds, attempt_steps + 1
                self.state["train_time_s"] += seconds
                self.state["samples"] += s.global_batch
                window.add(step, values, seconds)
                bar.update(1)
                self.state["step"] = step
                if step % s.log_every == 0 or step == s.total_steps:
                    loss = self._log(window, step, progress)
                    bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                    window = _Window()
                if s.eval_every and step % s.eval_every == 0 and step < s.total_steps:
                    window.settle()  # a non-finite loss stops the run before it is evaluated
                    reason = self._intermediate_eval(step)
                    if reason is not None:
                        return self._result("pruned", step, {}, attempt_time, attempt_steps, reason)
                if (step == s.total_steps and s.checkpoint_at_end) or (
                        s.checkpoint_every and step % s.checkpoint_every == 0):
                    self.state["window"] = window.state()  # settles: no checkpoint after a non-finite loss
                    checkpoint.save(acc, self.run_dir / "checkpoints", step, self.state)
                if self.interrupt is not None and step < s.total_steps:
                    self.interrupt.after_step(step, start_step)
        finally:
            bar.close()
        final = self._evaluate(step)
        return self._result("done", step, final, attempt_time, attempt_steps)

    def _result(self, status: str, step: int, final: dict[str, float], attempt_time: float, attempt_steps: int,
                reason: str | None = None) -> LoopResult:
        s = self.s
        step_time = attempt_time / attempt_steps if attempt_steps else None
        fps = self.state.get("flops_per_sample")
        flops_per_step = fps * s.global_batch if fps else None
        peak = peak_flops(s.precision, self.accelerator.device)
        stats = {
            "steps": step, "steps_run": attempt_steps, "step_time_s": step_time,
            "samples_per_s": s.global_batch / step_time if step_time else None,
            "flops_per_step": flops_per_step,
            "mfu": mfu(flops_per_step, step_time, s.num_processes, peak) if flops_per_step and step_time else None,
            "peak_mem_mb": peak_memory_mb(self.accelerator.device), "train_time_s": self.state["train_time_s"],
            "num_processes": s.num_processes, "accumulation": s.accumulation,
            "per_device_batch": s.per_device_batch, "global_batch": s.global_batch, **self.speedups,
        }
        self.trackers.finish()
        return LoopResult(status, step, list(self.state["history"]), final, stats, reason, self.resumed_from,
                          self.accelerator, self.accelerator.unwrap_model(self.model))


def _optimizer_step(acc: Any, optimizer: Any) -> Callable[[], Any]:
    """The optimizer step to call. Accelerate's wrapper asks importlib whether ``lomo_optim`` is
    installed on every step (~2 ms: over 1 % of a tiny CPU step, bench_trainer's profile); without a
    grad scaler (fp16) or XLA its step is exactly the wrapped optimizer's, so that one is called."""
    from accelerate.utils import DistributedType

    if acc.scaler is None and acc.distributed_type != DistributedType.XLA:
        return optimizer.optimizer.step  # type: ignore[no-any-return]
    return optimizer.step  # type: ignore[no-any-return]


def _backward(acc: Any) -> Callable[[torch.Tensor], None]:
    """The backward to call. Without accumulation, a grad scaler or DeepSpeed/Megatron, Accelerate's
    is ``(loss / 1).backward()``: dividing by one changes no bit of the loss or of any gradient,
    so the division (and its node in the graph) is left out."""
    from accelerate.utils import DistributedType

    plain = acc.gradient_accumulation_steps == 1 and acc.scaler is None and acc.distributed_type not in (
        DistributedType.DEEPSPEED, DistributedType.MEGATRON_LM)
    return torch.Tensor.backward if plain else acc.backward  # type: ignore[no-any-return]


def _has_unused_parameters(model: nn.Module, batch: dict[str, Any]) -> bool:
    """Whether a training step leaves some trainable parameter without a gradient (e.g. the ITM
    pooler in MLM-only pre-training): DDP must then be told, or it waits for them forever."""
    model.train()
    model(batch)["loss"].backward()
    unused = any(p.requires_grad and p.grad is None for p in model.parameters())
    model.zero_grad(set_to_none=True)
    return unused


def _chain_first(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest
