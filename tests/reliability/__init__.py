"""Reliability: hostile input, foreign and damaged files, missing values, signals."""
