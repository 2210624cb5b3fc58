"""Running hepclf on Dask: one home for cluster set-up, the executor and distributed training.

``hepclf score``, ``ingest``, ``train``, ``tune`` and ``result`` take the same two flags:
``--workers N`` (a LocalCluster of N single-threaded worker processes) or
``--scheduler tcp://HOST:PORT`` (an existing cluster, e.g. from dask-jobqueue). Without
either, everything runs in this process.
"""
