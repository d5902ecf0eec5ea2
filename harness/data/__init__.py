"""data: the synthetic benchmark, ViLT/METER Arrow readers, converters, collators.

- ``synthetic`` / ``synthetic_tasks`` / ``synthetic_data``: shape scenes (numpy-rendered,
  deterministic from ``data.synthetic.seed``) in every task form, cached under
  ``cache_dir()/synthetic``; chance and blind (text-only prior) baselines.
- ``arrow``: memory-mapped readers of the ViLT/METER Arrow files, METER's splits
  (``DEFAULT_SPLITS``, overridable with ``data.splits``); ``convert``: raw public layouts →
  those files; ``check``: what ``harness data check`` reports.
- ``vqa``: official VQA answer normalisation, vocabulary, soft scores.
- ``text``: word-level tokenizer for the synthetic world; ``collate``: image transforms,
  whole-word MLM masking (works for BPE), VQA targets.
- ``pipeline``: the data → trainer API (``task_info``, ``train_batches``, ``eval_batches``,
  ``retrieval_eval_set``, ``baselines``); ``loaders``/``sources`` are its insides.

Nothing here runs at import time; torch is imported only by the modules that need it.
"""
