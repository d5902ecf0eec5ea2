"""Checkpoints from other codebases (METER) as runs of this harness."""
