"""SNLI-VE: image premise + text hypothesis → contradiction (0), neutral (1), entailment (2)."""

from __future__ import annotations

from harness.train.tasks.classify import ClassifierTask


class VisualEntailment(ClassifierTask):
    classes = 3
