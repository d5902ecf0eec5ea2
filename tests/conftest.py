"""Test-wide settings: one torch thread per process, a shared cache for the tiny zoo."""

from __future__ import annotations

import os
from pathlib import Path

# Before anything imports torch: small models run fastest, and tests in parallel processes
# don't oversubscribe the two cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The tiny zoo and synthetic data are built once per checkout and reused by every test.
os.environ.setdefault("HARNESS_CACHE", str(Path(__file__).resolve().parents[1] / ".cache" / "harness"))
