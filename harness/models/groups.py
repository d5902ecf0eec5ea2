"""LR groups by declaration: each module states ``lr_group`` and its parameters follow it.

METER found its groups by matching parameter names, which silently left its retrieval head
in no group. Here a parameter belongs to the group of its nearest module (itself or an
ancestor) that declares ``lr_group``; a trainable parameter with no declaring module is an
error, never a silent default.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

from torch import nn

GROUP_NAMES = ("pretrained", "random", "head")
Groups = dict[str, list[tuple[str, nn.Parameter]]]


class UndeclaredParameter(ValueError):
    """A trainable parameter whose module and ancestors declare no ``lr_group``."""


def param_groups(model: nn.Module, rules: str = "harness") -> Groups:
    """{"pretrained" | "random" | "head": [(name, parameter), ...]}; frozen parameters left out.

    Each trainable parameter appears exactly once (shared parameters under their first name).
    ``rules="meter"``: a module's ``meter_lr_group``, where it declares one, replaces its
    ``lr_group`` — the group METER's ``set_schedule`` puts it in (its name rules miss the
    token-type embedding and the retrieval rank head, which train at the base LR there).
    """
    if rules not in ("harness", "meter"):
        raise ValueError(f"unknown parameter rules '{rules}'; expected 'harness' or 'meter'")
    groups: Groups = {name: [] for name in GROUP_NAMES}
    seen: set[int] = set()
    undeclared: list[str] = []

    def walk(module: nn.Module, prefix: str, inherited: str | None) -> None:
        group = getattr(module, "lr_group", inherited)
        if rules == "meter":
            group = getattr(module, "meter_lr_group", group)
        if group is not None and group not in GROUP_NAMES:
            raise ValueError(f"module '{prefix or type(module).__name__}' declares lr_group '{group}'; "
                             f"expected one of {GROUP_NAMES}")
        for name, param in module.named_parameters(recurse=False):
            if param is None or not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            full = f"{prefix}{name}"
            if group is None:
                undeclared.append(full)
            else:
                groups[group].append((full, param))
        for name, child in module.named_children():
            walk(child, f"{prefix}{name}.", group)

    walk(model, "", None)
    if undeclared:
        shown = ", ".join(undeclared[:5]) + (" ..." if len(undeclared) > 5 else "")
        raise UndeclaredParameter(f"{len(undeclared)} trainable parameters sit in no module that declares "
                                  f"lr_group: {shown}")
    return groups


def group_sizes(model: nn.Module) -> dict[str, int]:
    """Number of trainable parameter elements per LR group."""
    return {name: sum(p.numel() for _, p in params) for name, params in param_groups(model).items()}


def declaring_modules(model: nn.Module, groups: Collection[str]) -> Iterator[nn.Module]:
    """The outermost modules under ``model`` that declare an ``lr_group`` in ``groups``, in
    registration order (a declaring module's submodules belong to it and are not listed)."""
    for child in model.children():
        group = getattr(child, "lr_group", None)
        if group in groups:
            yield child
        elif group is None:
            yield from declaring_modules(child, groups)
