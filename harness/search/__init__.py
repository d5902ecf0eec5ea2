"""Optuna search over a grid's ``search:`` parameters (``harness search``); nothing imported here.

- ``config``: ``SearchSpec``, the ``search:`` block's schema (torch- and optuna-free).
- ``trial_jobs``: a trial's values → ordinary harness jobs via the grid compiler (same run ids).
- ``study``: journal/database storage, sampler, pruner, recovery of trials lost with their worker.
- ``worker``: ``run_worker(WorkerConfig)``, the loop each worker runs; pruning through ``on_eval``.
- ``launch``: W local worker processes, or a SLURM array of workers (submitit).
- ``report`` / ``plots``: ``<results>/reports/<grid>/search/`` and one store row per finished trial.
"""
