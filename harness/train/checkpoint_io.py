"""The contents of one checkpoint, without pickle: tensors in safetensors, the rest in JSON.

What Accelerate's ``save_state``/``load_state`` keep, kept the same way here (so a resume is
exact): the prepared models, optimizers and schedulers, the objects registered for
checkpointing (the LR scheduler), the fp16 grad scaler, the Accelerator's step counter and
every process's RNG states (Python, NumPy, torch CPU and CUDA).

    model_<i>.safetensors                 model weights (main process)
    optimizer_<i>.safetensors / .json     optimizer state tensors / param groups and scalars
    scheduler_<i>.json, object_<i>.json   state dicts of schedulers and registered objects
    scaler.json                           grad scaler state (fp16 only)
    rng_<rank>.safetensors / .json        each process's RNG states and the step counter
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from harness.train.checkpoint import python_rng_state, set_python_rng_state


def _dump(path: Path, data: Any) -> None:
    try:
        text = json.dumps(data, indent=1, allow_nan=True)
    except TypeError as exc:
        raise TypeError(f"checkpoint {path.name}: state is not JSON-serialisable ({exc})") from None
    path.write_text(text)


def _load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    # clone: tied or shared tensors cannot be saved as views of one storage
    save_file({k: v.detach().contiguous().clone().cpu() for k, v in tensors.items()}, str(path))


def _split_state(state: dict[Any, Any], prefix: str = "") -> tuple[dict[str, torch.Tensor], Any]:
    """A nested state dict → (tensors by "a/b/c" path, the same structure with tensors replaced by markers)."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, torch.Tensor):
            tensors[path] = value
            return {"__tensor__": path}
        if isinstance(value, dict):
            return {"__dict__": [[k, walk(v, f"{path}/{k}")] for k, v in value.items()]}
        if isinstance(value, (list, tuple)):
            return [walk(v, f"{path}/{i}") for i, v in enumerate(value)]
        return value

    return tensors, walk(state, prefix)


def _join_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(skeleton, dict) and "__tensor__" in skeleton:
        return tensors[skeleton["__tensor__"]]
    if isinstance(skeleton, dict) and "__dict__" in skeleton:
        return {k: _join_state(v, tensors) for k, v in skeleton["__dict__"]}
    if isinstance(skeleton, list):
        return [_join_state(v, tensors) for v in skeleton]
    return skeleton


def _save_state_dict(folder: Path, name: str, state: dict[str, Any]) -> None:
    tensors, skeleton = _split_state(state)
    _save_tensors(folder / f"{name}.safetensors", tensors)
    _dump(folder / f"{name}.json", skeleton)


def _load_state_dict(folder: Path, name: str) -> Any:
    return _join_state(_load_json(folder / f"{name}.json"), load_file(str(folder / f"{name}.safetensors")))


def save_state(acc: Any, folder: Path) -> None:
    """Every process writes its RNG states; the main process writes the shared states."""
    rank = acc.process_index
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng.update({f"cuda_{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    _save_tensors(folder / f"rng_{rank}.safetensors", rng)
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # type: ignore[misc]
    _dump(folder / f"rng_{rank}.json", {"python": python_rng_state(), "step": int(acc.step),
                                        "numpy": [kind, np.asarray(keys).tolist(), pos, has_gauss, cached]})
    if not acc.is_main_process:
        return
    for i, model in enumerate(acc._models):
        _save_tensors(folder / f"model_{i}.safetensors", acc.unwrap_model(model).state_dict())
    for i, optimizer in enumerate(acc._optimizers):
        _save_state_dict(folder, f"optimizer_{i}", optimizer.state_dict())
    for i, scheduler in enumerate(acc._schedulers):
        _dump(folder / f"scheduler_{i}.json", scheduler.state_dict())
    for i, obj in enumerate(acc._custom_objects):
        _dump(folder / f"object_{i}.json", obj.state_dict())
    if acc.scaler is not None:
        _dump(folder / "scaler.json", acc.scaler.state_dict())


def load_state(acc: Any, folder: Path) -> None:
    for i, model in enumerate(acc._models):
        acc.unwrap_model(model).load_state_dict(load_file(str(folder / f"model_{i}.safetensors"),
                                                          device=str(acc.device)))
    for i, optimizer in enumerate(acc._optimizers):
        optimizer.load_state_dict(_load_state_dict(folder, f"optimizer_{i}"))
    for i, scheduler in enumerate(acc._schedulers):
        scheduler.load_state_dict(_load_json(folder / f"scheduler_{i}.json"))
    for i, obj in enumerate(acc._custom_objects):
        obj.load_state_dict(_load_json(folder / f"object_{i}.json"))
    if acc.scaler is not None:
        acc.scaler.load_state_dict(_load_json(folder / "scaler.json"))
    rank = acc.process_index
    saved = _load_json(folder / f"rng_{rank}.json")
    tensors = load_file(str(folder / f"rng_{rank}.safetensors"))
    acc.step = int(saved["step"])
    set_python_rng_state(saved["python"])
    kind, keys, pos, has_gauss, cached = saved["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[f"cuda_{i}"] for i in range(torch.cuda.device_count()) if f"cuda_{i}" in tensors]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
