"""Finding and loading pre-trained weights through the libraries' own loading paths.

Order of places looked in, for an encoder registered as ``name`` with library id ``lib_id``:

1. ``spec.weights_dir`` (a local directory holding one sub-directory per encoder):
   ``<weights_dir>/<name>/``, ``<weights_dir>/<lib_id>/`` or ``<weights_dir>/<last part of lib_id>/``.
   Hugging Face models load with ``from_pretrained(dir)``; timm models from the ``model.safetensors``
   (or ``pytorch_model.bin``) file in that directory, or from ``<weights_dir>/<name>.safetensors``.
2. The Hugging Face hub cache (``HF_HOME``) — and for timm also torch hub's checkpoint cache —
   offline (``local_files_only``) when ``HF_HUB_OFFLINE=1`` or huggingface.co cannot be reached.

A weight found nowhere raises :class:`MissingWeights`, which says where it looked and how to
provide the files. There is never a silent fallback to random initialisation.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


class MissingWeights(FileNotFoundError):
    """Pre-trained weights that are neither in ``weights_dir`` nor in the libraries' caches."""

    def __str__(self) -> str:  # FileNotFoundError would prefix an errno
        return str(self.args[0])


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@functools.lru_cache(maxsize=1)
def _hub_reachable() -> bool:
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=2.0):
            return True
    except OSError:
        return False


def offline() -> bool:
    """True when the libraries may use only local files (``HF_HUB_OFFLINE=1`` or no network)."""
    if _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("TRANSFORMERS_OFFLINE")):
        return True
    return not _hub_reachable()


def candidate_dirs(weights_dir: str | os.PathLike[str] | None, name: str, lib_id: str) -> list[Path]:
    """Directories under ``weights_dir`` that may hold this encoder's files, most specific first."""
    if not weights_dir:
        return []
    root = Path(weights_dir).expanduser()
    names = [name, lib_id, lib_id.split("/")[-1], name.replace("/", "-")]
    out: list[Path] = []
    for n in names:
        path = root / n
        if path not in out:
            out.append(path)
    return out


def missing_message(what: str, looked: list[str], how: str) -> str:
    places = "\n".join(f"  - {p}" for p in looked) or "  - (nowhere: no weights_dir and no cache)"
    return (f"pre-trained weights for {what} were not found. Looked in:\n{places}\n"
            f"Provide them with:\n  {how}\n"
            "then set model.weights_dir to that parent folder (or leave it unset to use the HF cache); "
            "use model.weights: random to train from scratch on purpose.")


# ---- Hugging Face (text encoders, tokenizers) -------------------------------------------------

@contextlib.contextmanager
def quiet_progress() -> Iterator[None]:
    """No transformers progress bars ("Loading weights", "Writing model shards") inside: one bar per
    tiny encoder load would flood every job log. The previous setting is restored afterwards."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def hf_source(name: str, hf_id: str, weights_dir: str | None, marker: str = "config.json") -> tuple[str, list[str]]:
    """The local directory to load from (holding ``marker``) or the hub id for the cache, and the places
    looked in (for error messages)."""
    looked: list[str] = []
    for path in candidate_dirs(weights_dir, name, hf_id):
        looked.append(str(path))
        if (path / marker).is_file():
            return str(path), looked
    looked.append(f"Hugging Face cache ({hf_cache_dir()}) for '{hf_id}'")
    return hf_id, looked


def hf_cache_dir() -> str:
    """The hub cache as the environment says now: huggingface_hub reads HF_HUB_CACHE once, at import, but a
    process may point it elsewhere later (`--rehearse` does, in the dispatcher that runs the preflight)."""
    env = os.environ.get("HF_HUB_CACHE")
    if env:
        return env
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def local_dir_for(name: str, weights_dir: str | None) -> Path:
    """Where a download for encoder ``name`` goes so that ``weights_dir`` finds it."""
    return Path(weights_dir or "WEIGHTS_DIR") / name.replace("/", "-")


def hf_download_hint(name: str, hf_id: str, weights_dir: str | None) -> str:
    # `hf` is huggingface_hub's command line (huggingface-cli is gone from current releases)
    return f"hf download {hf_id} --local-dir {local_dir_for(name, weights_dir)}"


def load_hf_model(name: str, hf_id: str, weights_dir: str | None, **model_kwargs: Any) -> Any:
    """``AutoModel.from_pretrained`` from ``weights_dir`` or the HF cache; :class:`MissingWeights` if absent."""
    from transformers import AutoModel

    source, looked = hf_source(name, hf_id, weights_dir)
    local_only = source != hf_id or offline()
    try:
        with quiet_progress():
            return AutoModel.from_pretrained(source, local_files_only=local_only, **model_kwargs)
    except OSError as exc:
        raise MissingWeights(missing_message(f"text encoder '{name}' ({hf_id})", looked,
                                             hf_download_hint(name, hf_id, weights_dir))) from exc


def load_hf_tokenizer(name: str, hf_id: str, weights_dir: str | None) -> Any:
    """``AutoTokenizer.from_pretrained`` from ``weights_dir`` or the HF cache; :class:`MissingWeights` if absent."""
    from transformers import AutoTokenizer

    source, looked = hf_source(name, hf_id, weights_dir, marker="tokenizer_config.json")
    local_only = source != hf_id or offline()
    try:
        return AutoTokenizer.from_pretrained(source, local_files_only=local_only)
    except (OSError, ValueError) as exc:
        raise MissingWeights(missing_message(f"the tokenizer of '{name}' ({hf_id})", looked,
                                             hf_download_hint(name, hf_id, weights_dir))) from exc


# ---- timm (vision encoders) -------------------------------------------------------------------

def timm_hub_id(timm_name: str) -> tuple[str | None, str | None]:
    """(hub repo, file name) timm itself would download ``timm_name`` from."""
    import timm

    cfg = timm.models.get_pretrained_cfg(timm_name)
    if cfg is None:
        return None, None
    return cfg.hf_hub_id, cfg.hf_hub_filename


def _torch_hub_file(timm_name: str) -> Path:
    """Where timm's URL downloads land (torch hub's checkpoint cache)."""
    import timm
    import torch

    cfg = timm.models.get_pretrained_cfg(timm_name)
    url = str((cfg.url if cfg is not None else "") or "")
    return Path(torch.hub.get_dir()) / "checkpoints" / (url.rsplit("/", 1)[-1] or f"{timm_name}.pth")


def timm_weight_file(name: str, timm_name: str, weights_dir: str | None, *, download: bool = True) -> Path:
    """The local file holding ``timm_name``'s weights; :class:`MissingWeights` when there is none.
    ``download=False`` (preflight) never fetches, even online."""
    looked: list[str] = []
    for path in candidate_dirs(weights_dir, name, timm_name):
        for fname in WEIGHT_FILES:
            looked.append(str(path / fname))
            if (path / fname).is_file():
                return path / fname
    if weights_dir:
        for stem in (name.replace("/", "-"), timm_name):
            file = Path(weights_dir).expanduser() / f"{stem}.safetensors"
            looked.append(str(file))
            if file.is_file():
                return file
    hub_id, hub_file = timm_hub_id(timm_name)
    if hub_id:
        found = _from_hf_cache(hub_id, hub_file, download=download)
        looked.append(f"Hugging Face cache ({hf_cache_dir()}) for '{hub_id}'")
        if found is not None:
            return found
    legacy = _torch_hub_file(timm_name)
    looked.append(str(legacy))
    if legacy.is_file():
        return legacy
    hint_id = hub_id or f"timm/{timm_name}"
    raise MissingWeights(missing_message(f"vision encoder '{name}' ({timm_name})", looked,
                                         hf_download_hint(name, hint_id, weights_dir)))


def _from_hf_cache(repo_id: str, filename: str | None, *, download: bool = True) -> Path | None:
    """A cached (or, when online and ``download``, downloaded) weight file of a hub repo."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    for fname in ([filename] if filename else ["model.safetensors", "open_clip_pytorch_model.bin",
                                               "pytorch_model.bin"]):
        cached = try_to_load_from_cache(repo_id, fname, cache_dir=hf_cache_dir())
        if isinstance(cached, str):
            return Path(cached)
    if not download or offline():
        return None
    try:
        return Path(hf_hub_download(repo_id, filename or "model.safetensors"))
    except Exception:  # noqa: BLE001 - any hub failure means "not available here"
        return None


def create_timm_pretrained(name: str, timm_name: str, weights_dir: str | None, **kwargs: Any) -> Any:
    """``timm.create_model(timm_name, pretrained=True)`` reading the located file (timm converts and
    filters the checkpoint itself, e.g. OpenAI CLIP or original Swin layouts)."""
    import timm

    file = timm_weight_file(name, timm_name, weights_dir)
    overlay = {"file": str(file)}
    if timm_name.startswith("volo_") and "layers" in kwargs:
        # timm's volo_* entry points fix the depths; an explicit architecture (a rehearsal's) goes through
        # the builder they call, with the same pretrained loading and checkpoint filter.
        from timm.models.volo import _create_volo

        return _create_volo(timm_name.split(".")[0], pretrained=True, pretrained_cfg_overlay=overlay, **kwargs)
    return timm.create_model(timm_name, pretrained=True, pretrained_cfg_overlay=overlay, **kwargs)


# ---- plain state dicts (the tiny zoo) ---------------------------------------------------------

def save_state_dict(state: dict[str, Any], path: Path) -> None:
    """Write a state dict as safetensors (contiguous, no shared storage)."""
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, str(path))


def load_state_dict_file(path: Path) -> dict[str, Any]:
    """Read a safetensors or torch state dict file (torch files with ``weights_only``)."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)
