"""The training stage: prepare the data, plan the fits, run them, evaluate them.

:mod:`.split`, :mod:`.normalize`, :mod:`.weights` and :mod:`.prepare` turn a feature table
into training and test rows; :mod:`.plan` and :mod:`.executor` run the fits; :mod:`.fit`
trains and scores one model; :mod:`.crossval` and :mod:`.categories` train one model per
fold or per analysis category; :mod:`.tuning` and :mod:`.studies` search hyperparameters.
:mod:`.evaluation` holds the HEP metrics and plots, :mod:`.physics` the physics result
(pyhf) of each model; :mod:`.results` holds what a run returns, :mod:`.report` the champion
choice and what a run reports, :mod:`.bundle` the trained model that travels to scoring.
The commands that orchestrate it live in :mod:`hepclf.workflows`.
"""
