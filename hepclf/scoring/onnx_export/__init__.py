"""ONNX export of hepclf models: one converter module per model type, one wrapper for all.

Each converter turns a fitted classifier into a graph on normalised features
(:class:`~hepclf.scoring.onnx_export.graph.ClassifierGraph`); :mod:`.graph` adds the
normaliser and the score head; :mod:`.export` picks the converter, checks the result
against the Python model with ONNX Runtime and writes the file.
"""
