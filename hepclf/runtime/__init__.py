"""What every stage relies on to behave well towards its user: errors that say what to do
(:mod:`.errors`), progress reported to whoever listens (:mod:`.progress`), outputs written
whole or not at all (:mod:`.files`), steps that finish once started (:mod:`.interrupts`),
and the version every output is stamped with (:mod:`.version`).

Nothing here imports another part of hepclf.
"""
