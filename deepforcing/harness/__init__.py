"""The harness: suites → work plan → generation → scoring → results, resumable and sharded over torchrun.

Importing this package is cheap (no torch). Modules, in the order data flows through them:

* ``prompts`` — prompt sets with stable ids (``prompts/sets.yaml``), pinned by sha256.
* ``yaml_lines``, ``suites`` — suite YAML (``eval/suites``) → validated frozen :class:`~.suites.SuiteConfig`;
  every problem reported at once with its line (or command-line flag) and the valid choices.
* ``plan`` — the suite expanded into (method, prompt, seed) items and content-keyed generation units
  (:class:`~.plan.UnitKey`); weights identity; GPU-time estimate from the paper's FPS.
* ``store`` — ``<out>/<suite>/<run-id>/``: atomic writes, per-unit manifest rows, completeness checks.
* ``runner`` — generation of pending units (this rank's share), streaming mp4, manifest row written last.
* ``scoring`` — metric construction from weight files, per-unit per-metric cached rows keyed by a fingerprint
  of metric code, weights and protocol.
* ``results`` — rows → declared aggregation → ``clips.jsonl``, ``videos.jsonl``, ``aggregate.json`` / ``.csv``
  (/ ``.parquet`` with pyarrow), on rank 0 only.
* ``distributed`` — torchrun process group (gloo on CPU, NCCL on CUDA), sharding, barriers.
* ``api`` — :func:`~.api.execute` (all stages) and :func:`~.api.dry_run`; ``cli`` — ``run`` / ``score`` /
  ``suites`` / ``--suite``; ``progress`` — rich progress bars.

Adding a suite: write ``eval/suites/<name>.yaml`` (schema in ``eval/suites/README.md``) and check it with
``deepforcing-eval suites show <name>`` and ``deepforcing-eval --suite <name> --dry-run``.
"""
