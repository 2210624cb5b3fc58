"""Deployment and interoperability: a ready MLflow tracking server and ONNX export.

Nothing here is imported by training or scoring; the commands import what they need
(MLflow's server, onnx, onnxruntime and the converters) only when they run.
"""
