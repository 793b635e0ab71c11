"""Registry errors: each message says what is wrong and what to do about it."""

from __future__ import annotations

from pipeline.errors import DistillError


class RegistryError(DistillError):
    """Base of every registry error."""


class UnknownVersion(RegistryError):
    """A version id that the registry does not hold."""


class UnknownAlias(RegistryError):
    """An alias name outside ``candidate``, ``canary``, ``production``."""


class RejectedVersion(RegistryError):
    """A version the gate rejected was asked to take an alias."""


class NothingToRollBack(RegistryError):
    """An alias has no earlier version in its history to go back to."""


class BundleError(RegistryError):
    """A bundle directory or gate report cannot be registered as given."""


class SchemaMismatch(RegistryError):
    """The database holds a registry schema of another version than this code expects."""


class ArtifactMissing(RegistryError):
    """A version's bundle is not in the local artifact store."""
