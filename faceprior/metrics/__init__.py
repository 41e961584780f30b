"""Image-quality metrics for face restoration, each calibrated in tests against a reference.

One module per metric; :mod:`faceprior.metrics.registry` lists them for ``faceprior evaluate``.
"""
