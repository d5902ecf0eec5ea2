"""Property-based fuzzing of the grid loader (issue 13): mutations of the shipped grids in types,
bounds, tags, aliases, encodings and names. Every mutated document must be refused by
``harness validate`` with exit code 2, a message naming the file (and the key, where there is
one), no traceback, within bounded time and memory. Four properties × 250 examples = 1,000
generated documents per run (about 30 s on a loaded 2-core machine)."""

from __future__ import annotations

import contextlib
import io
import resource
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli import main

REPO = Path(__file__).resolve().parents[2]
GRIDS = sorted((REPO / "grids").glob("*.yaml"))
EXAMPLES = 250
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
PER_DOCUMENT_S = 10.0
MEMORY_GROWTH_MB = 400
PLACEHOLDER = "__FUZZ_PLACEHOLDER__"


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """A copy of grids/ (so ``extends: common/meter.yaml`` resolves) to write mutated files into."""
    folder = Path(tempfile.mkdtemp(prefix="harness-fuzz-"))
    shutil.copytree(REPO / "grids", folder / "grids")
    yield folder / "grids"
    shutil.rmtree(folder, ignore_errors=True)


def _shipped(path: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text()))


def _validate(path: Path) -> tuple[int, str]:
    err, out = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(["validate", str(path)])
        except SystemExit as exc:  # argparse: never expected here, but must not hide a traceback
            code = int(exc.code or 0)
    took = time.monotonic() - started
    assert took < PER_DOCUMENT_S, f"{path.name}: validation took {took:.1f}s"
    return code, err.getvalue()


def _assert_refused(path: Path, key: str | None = None) -> None:
    code, err = _validate(path)
    assert code == 2, f"accepted although invalid:\n{path.read_bytes()[:2000]!r}\n{err}"
    assert "Traceback" not in err and path.name in err, err
    if key is not None:
        assert key in err, f"the key {key!r} is not named:\n{err}"


def _set(data: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    node = data
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[keys[-1]] = value


_PROFILES: dict[Path, list[str]] = {}


def _profile_names(grid: Path) -> list[str]:
    """Every profile of the grid, its parent's included (a profile may override any base key)."""
    if grid not in _PROFILES:
        from harness.spec.document import load_document

        _PROFILES[grid] = sorted(load_document(grid).data.get("profiles") or {})
    return _PROFILES[grid]


def _set_everywhere(data: dict[str, Any], keys: tuple[str, ...], value: Any, grid: Path) -> None:
    """Set ``keys`` in the document and in every profile (so that no profile masks the mutation)."""
    _set(data, keys, value)
    for name in _profile_names(grid):
        _set(data, ("profiles", name, *keys), value)


def _write(folder: Path, name: str, data: dict[str, Any], raw: str | None = None) -> Path:
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if raw is not None:
        text = text.replace(f"'{PLACEHOLDER}'", raw).replace(PLACEHOLDER, raw)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@contextlib.contextmanager
def _memory_bounded() -> Iterator[None]:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < MEMORY_GROWTH_MB, f"peak memory grew by {grown_mb:.0f} MB while fuzzing"


# ---- types and bounds -------------------------------------------------------------------------

FLOAT_KEYS = [("base", "optim", "lr"), ("base", "optim", "lr_ratio"), ("base", "optim", "warmup_ratio"),
              ("base", "resources", "mem_gb")]
INT_KEYS = [("base", "resources", "time_min"), ("base", "train", "log_every"), ("base", "model", "hidden"),
            ("base", "model", "heads"), ("base", "model", "max_text_len"), ("base", "data", "synthetic", "image_size"),
            ("base", "data", "synthetic", "train_images")]
NUMBER_KEYS = FLOAT_KEYS + INT_KEYS
# Not "~": null has a documented meaning in a grid (it deletes the key, so the default or nothing applies),
# e.g. `optim.lr: ~` over an `extends` parent is a valid grid that trains at the default LR.
BAD_NUMBERS = st.one_of(
    st.sampled_from([".inf", "-.inf", ".nan", "1e400", "-1e400", "true", "false", "yes", "'64'", "'1e-5'", "''",
                     "[1, 2]", "{a: 1}", "-5", "0", "-10000000000000", "2021-01-01"]),
    st.integers(max_value=-1).map(str),
    st.text(alphabet="abcdefxyz_", min_size=1, max_size=8).map(lambda s: f"'{s}'"),
)
TOO_BIG = st.integers(min_value=2**31, max_value=2**70).map(str)  # whole numbers only: a float may be large
BAD_SEEDS = st.one_of(
    st.sampled_from(["0", "-1", "1001", "1000000000", "[]", "[1, 1]", "'3'", "true", "3.5", "{a: 1}", ".inf"]),
    st.integers(min_value=2**32, max_value=2**80).map(lambda n: f"[0, {n}]"),
    st.integers(max_value=-1).map(lambda n: f"[{n}]"),
)


@FUZZ
@given(grid=st.sampled_from(GRIDS), key=st.sampled_from(NUMBER_KEYS), bad=BAD_NUMBERS, seeds=st.booleans(),
       bad_seeds=BAD_SEEDS, too_big=TOO_BIG, use_too_big=st.booleans())
def test_bad_types_and_bounds_are_refused(workdir: Path, grid: Path, key: tuple[str, ...], bad: str, seeds: bool,
                                          bad_seeds: str, too_big: str, use_too_big: bool) -> None:
    if use_too_big and key in INT_KEYS:
        bad = too_big
    data = _shipped(grid)
    if seeds:
        _set_everywhere(data, ("seeds",), PLACEHOLDER, grid)
        raw, named = bad_seeds, "seeds"
    else:
        _set_everywhere(data, key, PLACEHOLDER, grid)
        raw, named = bad, ".".join(key[1:])
        if raw == "0" and key[-1] == "warmup_ratio":
            raw = "2"  # 0 is a valid warm-up ratio; above 1 is not
    with _memory_bounded():
        _assert_refused(_write(workdir, f"types_{grid.name}", data, raw), named)


# ---- tags, merge keys and aliases ---------------------------------------------------------------

TAGGED = ['!!python/object/apply:os.system ["true"]', "!!python/name:os.system", "!!python/tuple [1, 2]",
          "!!binary aGk=", "!!set {a: null}", "!!omap [a: 1]", "!!timestamp 2020-01-01", "!custom value",
          "!!python/object:collections.OrderedDict {}", "{<<: {a: 1}}", "&r [*r]", "&m {a: *m}"]


def _bomb(levels: int, width: int) -> str:
    parts = ["&a0 [" + ", ".join(["x"] * width) + "]"]
    parts += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "[" + ", ".join(parts) + "]"


def _paths(node: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, str(key)))
    return out


@FUZZ
@given(grid=st.sampled_from(GRIDS), pick=st.integers(min_value=0), snippet=st.one_of(
    st.sampled_from(TAGGED),
    st.tuples(st.integers(min_value=5, max_value=7), st.integers(min_value=10, max_value=14)).map(
        lambda lw: _bomb(*lw))))
def test_tags_merge_keys_and_alias_bombs_are_refused(workdir: Path, grid: Path, pick: int, snippet: str) -> None:
    data = _shipped(grid)
    paths = _paths(data)
    where = paths[pick % len(paths)]
    _set(data, where, PLACEHOLDER)
    with _memory_bounded():
        _assert_refused(_write(workdir, f"tags_{grid.name}", data, snippet))


# ---- encodings ----------------------------------------------------------------------------------


@FUZZ
@given(grid=st.sampled_from(GRIDS), kind=st.sampled_from(["latin-1", "utf-16", "bad-byte", "nul", "cp1252"]),
       offset=st.floats(min_value=0.0, max_value=1.0), byte=st.sampled_from([0xFF, 0xFE, 0xC0, 0xC1, 0xF8]))
def test_text_that_is_not_utf8_is_refused(workdir: Path, grid: Path, kind: str, offset: float, byte: int) -> None:
    text = grid.read_text(encoding="utf-8")
    cut = int(offset * len(text))
    if kind in ("latin-1", "cp1252"):
        raw = (text[:cut] + "# caf\u00e9 na\u00efve\n" + text[cut:]).encode(kind, errors="replace")
        raw = raw.replace(b"caf\xe9", b"caf\xe9") if b"\xe9" in raw else raw + b"\xe9"
    elif kind == "utf-16":
        raw = text.encode("utf-16")
    elif kind == "bad-byte":
        data = text.encode("utf-8")
        raw = data[:cut] + bytes([byte]) + data[cut:]
    else:
        data = text.encode("utf-8")
        raw = data[:cut] + b"\x00" + data[cut:]
    path = workdir / f"enc_{grid.name}"
    path.write_bytes(raw)
    with _memory_bounded():
        _assert_refused(path)


# ---- names --------------------------------------------------------------------------------------

SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
BAD_NAMES = st.one_of(
    st.sampled_from(["../../x", "a/b", ".", "..", "", "-x", ".hidden", "x;rm -rf ~", "$(id)", "`id`", "a b", "a\tb",
                     "x" * 65, "caf\u00e9", "a|b", "a>b", "*", "~root"]),
    st.text(min_size=1, max_size=20).filter(lambda s: not set(s) <= SAFE),
)


@FUZZ
@given(grid=st.sampled_from(GRIDS), name=BAD_NAMES)
def test_unsafe_grid_names_are_refused(workdir: Path, grid: Path, name: str) -> None:
    data = _shipped(grid)
    data["name"] = name
    with _memory_bounded():
        _assert_refused(_write(workdir, f"name_{grid.name}", data), "name")
