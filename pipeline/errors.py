"""Errors a user can act on. Stage entry points print them without a traceback and exit non-zero."""


class DistillError(Exception):
    """Base of every error that carries a message meant for the user."""


class DataError(DistillError):
    """The input data cannot be read or is not usable (missing file, missing column, empty, ...)."""


class ValidationFailed(DistillError):
    """The data failed its expectation suite; the message is the readable report."""


class FetchError(DistillError):
    """A dataset or model could not be fetched (network, integrity check)."""
