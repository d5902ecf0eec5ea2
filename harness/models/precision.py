"""Modules that must run outside mixed precision: their forward is wrapped to run with autocast off,
on fp32 inputs. The text-encoder families name them (``TextFamily.fp32_modules``); the outputs are fp32
and the layers after them go back to the autocast dtype by themselves."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn


def _fp32(value: Any) -> Any:
    return value.float() if isinstance(value, torch.Tensor) and value.is_floating_point() else value


def _outside_autocast(forward: Any) -> Any:
    @functools.wraps(forward)
    def run(*args: Any, **kwargs: Any) -> Any:
        tensor = next((a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)), None)
        device = tensor.device.type if tensor is not None else "cpu"
        if not torch.is_autocast_enabled(device):
            return forward(*args, **kwargs)
        with torch.autocast(device, enabled=False):
            return forward(*(_fp32(a) for a in args), **{k: _fp32(v) for k, v in kwargs.items()})

    return run


def run_in_fp32(model: nn.Module, class_paths: Iterable[str]) -> int:
    """Wrap every submodule of ``model`` that is an instance of one of ``class_paths`` (``module:Class``);
    returns how many were wrapped."""
    classes = tuple(getattr(importlib.import_module(m), c) for m, c in (p.split(":") for p in class_paths))
    if not classes:
        return 0
    wrapped = 0
    for module in model.modules():
        if isinstance(module, classes):
            module.forward = _outside_autocast(module.forward)  # type: ignore[method-assign]
            wrapped += 1
    return wrapped
