"""From branches to per-event values: :mod:`.expressions` (derived features), :mod:`.features`
(which columns a model reads), :mod:`.selection` (event cuts) and :mod:`.categories`
(one model per analysis category).
"""
