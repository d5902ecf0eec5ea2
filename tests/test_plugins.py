"""User plug-ins: a grid's ``plugins:`` and the ``meter_harness.plugins`` entry points add an
encoder, an objective and a task from outside the package (examples/plugin), and run a grid.

The runs go through subprocesses so this session's registries stay the package's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.spec.compile import compile_grid
from harness.spec.errors import GridError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "plugin"


def _env(tmp_path: Path, *paths: Path) -> dict[str, str]:
    env = dict(os.environ, HARNESS_CACHE=os.environ.get("HARNESS_CACHE", str(tmp_path / "cache")))
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), env.get("PYTHONPATH", "")])
    return env


def test_a_grid_runs_through_the_example_plugin(tmp_path: Path) -> None:
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "harness", "run", str(EXAMPLE / "grid.yaml"), "--results", str(results),
           "--only", "model.fusion=co-attention", "--workers", "1"]
    done = subprocess.run(cmd, env=_env(tmp_path, EXAMPLE), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    specs = [json.loads(p.read_text()) for p in (results / "runs").glob("*/spec.json")]
    assert sorted(s["job"]["stage"] for s in specs) == ["finetune", "pretrain"]
    for spec in specs:  # the run record names the plug-in and its version
        assert spec["job"]["plugins"] == [{"module": "harness_example_plugin", "version": "0.1.0"}]
        assert {"module": "harness_example_plugin", "version": "0.1.0"} in spec["plugins"]
    finetune = next(s for s in specs if s["job"]["stage"] == "finetune")
    progress = json.loads((results / "runs" / finetune["job"]["run_id"] / "progress.json").read_text())
    assert progress["state"] == "done" and 0.0 <= progress["metrics"]["test/accuracy"] <= 1.0
    from harness.store import Store

    trained = set(Store(results).metrics()["metric"])
    assert {"loss/itc", "loss/itm", "loss/entailment"} <= trained  # the plug-in's objective beside the package's


def test_entry_points_register_without_a_plugins_line(tmp_path: Path) -> None:
    """An installed distribution's ``meter_harness.plugins`` entry point is loaded with the registries."""
    site = tmp_path / "site"
    info = site / "meter_harness_example_plugin-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: meter-harness-example-plugin\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[meter_harness.plugins]\nexample = harness_example_plugin\n")
    probe = textwrap.dedent("""
        from harness.registry import OBJECTIVES, TASKS, VISION_ENCODERS
        from harness.plugins import loaded_plugins
        print("itc" in OBJECTIVES, "entailment" in TASKS, "patch-mlp" in VISION_ENCODERS)
        print([(p.module, p.version) for p in loaded_plugins()])
    """)
    done = subprocess.run([sys.executable, "-c", probe], env=_env(tmp_path, site, EXAMPLE), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["True True True", "[('harness_example_plugin', '0.1.0')]"]


def _grid(tmp_path: Path, plugins: str) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(f"name: g\nplugins: {plugins}\nbase:\n  pretrain: {{objectives: [mlm]}}\n")
    return path


def test_a_plugin_that_reuses_a_name_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "clashing_plugin.py").write_text(textwrap.dedent("""
        from harness.registry import OBJECTIVES

        @OBJECTIVES.register("mlm", "my own MLM")
        def build(**kwargs):
            raise AssertionError("never built")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(GridError) as err:
        compile_grid(_grid(tmp_path, "[clashing_plugin]"))
    text = str(err.value)
    assert "objective 'mlm' is registered twice: by harness.train.objectives.mlm and by clashing_plugin" in text
    assert "grid.yaml:2" in text and "plugins.0" in text


def test_an_unimportable_plugin_is_an_error_at_its_line(tmp_path: Path) -> None:
    with pytest.raises(GridError, match=r"grid.yaml:2.*plugins.0.*cannot import plug-in 'no_such_plugin_module'"):
        compile_grid(_grid(tmp_path, "[no_such_plugin_module]"))
    with pytest.raises(GridError, match="expected a list of module names"):
        compile_grid(_grid(tmp_path, "no_such_plugin_module"))
