"""Training tasks, one module per method (registered in ``faceprior.train.task.TASKS``)."""
