"""From branches to per-event values: :mod:`.expressions` (derived features and cuts, with
the functions of :mod:`.functions`), :mod:`.features` (which columns a model reads),
:mod:`.selection` (event cuts) and :mod:`.categories` (one model per analysis category).
"""
