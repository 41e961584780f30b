"""Network definitions, one module (or sub-package) per method.

Importing this package is cheap; each architecture module imports torch when it is loaded.
"""
