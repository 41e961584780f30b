"""Reading and writing images without losing bit depth, alpha, orientation or metadata."""
