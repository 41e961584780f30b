"""Checkpoints and the model zoo: safe reading, architecture detection, downloads, cache."""
