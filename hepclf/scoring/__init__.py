"""Batch scoring: trained models applied to ROOT files, one output (friend tree) per input.

Each input file is read chunk by chunk; every model computes its own features from the raw
branches (the feature specification and normaliser travel with the model) and its scores
are written, one entry per input entry and in the same order, to ``<stem>_scores.root``
(a TTree with the input's tree name) or ``<stem>_scores.parquet``; an input with several
trees gets ``<stem>_<tree>_scores.root`` (or ``.parquet``) per scored tree. Entry points:
:func:`hepclf.scoring.runner.score_files` and the ``hepclf score`` command. The same models
are scored over HTTP by :mod:`.service` and exported to ONNX by :mod:`.onnx_export`. Nothing
heavy is imported here, so that ``hepclf --help`` stays fast.
"""

from typing import Literal, get_args

Format = Literal["root", "parquet"]
"""The output formats: the one list that ``hepclf score``, the service and the writers read."""
FORMATS: tuple[Format, ...] = get_args(Format)

# Smaller chunks are as fast (they stay in cache) and keep peak memory low: about 5x the
# chunk for the features' intermediate arrays (see benchmarks/scoring.py).
DEFAULT_STEP_SIZE = "25 MB"
