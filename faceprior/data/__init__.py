"""Training and benchmark data: degradation recipes, face datasets and DDP sharding.

Submodules are imported on demand (``faceprior.data.degradations``, ``faceprior.data.datasets``,
``faceprior.data.sharding``) so that importing the package loads neither torch nor OpenCV.
"""
