"""Stage 3, training: runs, grids of runs, and choosing the best of them.

Owns the run configuration (``config``: the frozen ``TrainConfig``, resolved once by
``resolve_config``), one resumable training run (``train``), the per-run history files
(``history``), grids and running them (``grid``; ``grid_runner``: ``plan_grid``/``run_grid``
over local processes or Ray) and best-run selection and export to a model folder
(``selection``).

May import: the core modules, ``fer_keras.data`` and ``fer_keras.model``. TensorFlow is
imported lazily, inside the functions that train or export.
"""
