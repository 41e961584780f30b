"""Training and benchmark data: degradation recipes, face datasets and UDRL pairs.

Submodules are imported on demand (``faceprior.data.degradations``, ``faceprior.data.datasets``,
``faceprior.data.pairs``) so that importing the package loads neither torch nor OpenCV.
"""
