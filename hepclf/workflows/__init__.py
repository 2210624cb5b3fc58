"""The commands' orchestration: ``hepclf train`` (:mod:`.train`), ``hepclf tune``
(:mod:`.tune`), ``hepclf result`` (:mod:`.result`) and ``hepclf init`` (:mod:`.init`).

They call the training stage, evaluation, physics, reports and tracking; only the CLI and
the public API call them.
"""
