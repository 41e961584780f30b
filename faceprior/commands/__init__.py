"""Sub-commands of the ``faceprior`` CLI, one module each (see ``faceprior.cli``)."""
