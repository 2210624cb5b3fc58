"""The commands' orchestration: ``hepclf train`` (:mod:`.train`), ``hepclf tune``
(:mod:`.tune`) and ``hepclf result`` (:mod:`.result`).

They call the training stage, evaluation, physics, reports and tracking; only the CLI and
the public API call them.
"""
