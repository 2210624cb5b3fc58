"""Drafting a pipeline from ROOT files (``hepclf init``)."""
