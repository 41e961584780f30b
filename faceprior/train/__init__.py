"""Training: one trainer (``trainer.py``) for every method, each method a ``TrainingTask``.

A run is described by a YAML config (``config.py``); the task named there (``task.py``
registry) owns the networks, losses and optimiser steps, the trainer owns everything that is
the same for every method: data order, distribution, precision, EMA, checkpoints, logging.
"""
