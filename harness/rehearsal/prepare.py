"""``harness rehearsal prepare``: the hub-layout weight cache and the Arrow root a rehearsal reads.

    DIR/hub/     tiny random checkpoints under the real hub ids (:mod:`harness.rehearsal.checkpoints`)
    DIR/raw/     tiny raw datasets in the public layouts (:mod:`harness.rehearsal.rawdata`)
    DIR/arrow/   every file METER's writers produce, written from DIR/raw by ``harness data convert``
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from harness.paths import cache_dir

READY = "rehearsal.json"
# Shards: two of each web corpus, as a real root has many (the reader checks they have no gaps).
SHARD_ROWS = {"sbu": 4, "gcc": 4}
ROWS = 8  # images per split


def default_root() -> Path:
    """``$HARNESS_REHEARSAL`` or ``<cache>/rehearsal``."""
    env = os.environ.get("HARNESS_REHEARSAL")
    return Path(env) if env else cache_dir() / "rehearsal"


def is_ready(root: Path) -> bool:
    return (root / READY).is_file()


def prepare(root: Path, *, log: bool = True) -> dict[str, int]:
    """Build DIR/hub, DIR/raw and DIR/arrow from scratch (an existing DIR is replaced)."""
    import harness.models.catalog  # noqa: F401 - registers the encoders
    from harness.data.convert import convert
    from harness.rehearsal.checkpoints import build_hub
    from harness.rehearsal.rawdata import WRITERS, write_raw

    root = root.absolute()
    for sub in ("hub", "raw", "arrow"):
        shutil.rmtree(root / sub, ignore_errors=True)
    (root / READY).unlink(missing_ok=True)
    repos = build_hub(root / "hub")
    if log:
        print(f"wrote {len(repos)} tiny checkpoints under their hub ids in {root / 'hub'}")
    rows: dict[str, int] = {}
    for dataset in WRITERS:
        raw = write_raw(dataset, root / "raw" / dataset, ROWS)
        counts, missing = convert(dataset, raw, root / "arrow", SHARD_ROWS.get(dataset, 100_000),
                                  rest_val_images=ROWS // 2)
        assert not missing, f"rehearsal raw data for {dataset} misses {missing[:3]}"
        rows.update(counts)
    if log:
        print(f"wrote {len(rows)} Arrow files in {root / 'arrow'} ({', '.join(sorted(rows))})")
    (root / READY).write_text(json.dumps({"repos": sorted(repos), "arrow": rows}, indent=1))
    return rows
