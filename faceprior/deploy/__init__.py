"""Deployment formats: ONNX export and ONNX Runtime execution of faceprior networks."""
