"""Domain errors. Library code raises these; only the CLI edge turns them into exit codes.

Every message is meant to be shown to a user as one line: it names the file (and row or key)
and the problem.
"""

from __future__ import annotations


class GLocalError(Exception):
    """Base class of every error that glocal reports to a user without a traceback."""

    exit_code: int = 1


class ConfigError(GLocalError):
    """A configuration file, preset or ``--set`` override is invalid."""

    exit_code = 2


class InputError(GLocalError):
    """A user-supplied file (image, pose, parsing, mask, CSV) is unreadable or malformed."""


class DataError(GLocalError):
    """A prepared dataset folder is missing, incomplete or of another kind."""


class WeightsError(GLocalError):
    """A weights folder is missing, truncated, or belongs to another model."""


class NotAvailableError(GLocalError):
    """A feature whose implementation has not landed yet, or an optional backend not installed."""

    exit_code = 2


class OutputExistsError(GLocalError):
    """An output exists and ``--overwrite`` was not given."""


class TrainingError(GLocalError):
    """Training stopped on a non-finite loss, an empty dataset or a similar condition."""
