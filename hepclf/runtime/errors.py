"""User-facing errors: one clear paragraph, shown without a traceback by the CLI."""

from __future__ import annotations


class HepclfError(Exception):
    """An error caused by the user's input (file, tree, branch, key, parameter).

    The message must name the offending thing and say what to do about it. The CLI
    prints it as one paragraph and exits with status 2, without a traceback.
    """


class ConfigError(HepclfError):
    """The pipeline YAML (or a model parameter) is not of the expected form."""


class InputDataError(HepclfError):
    """A ROOT file, tree, branch or expression cannot be read or evaluated."""
