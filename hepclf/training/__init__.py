"""The training stage: prepare the data, plan the fits, run them, evaluate them.

:mod:`.split`, :mod:`.normalize`, :mod:`.weights` and :mod:`.prepare` turn a feature table
into training and test rows; :mod:`.fit` trains and scores one model; :mod:`.crossval` and
:mod:`.categories` train one model per fold or per analysis category; :mod:`.results` holds
what a run returns. The commands that orchestrate it live in :mod:`hepclf.workflows`.
"""
