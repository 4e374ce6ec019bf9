"""The datawheel error tree.

Every error says what went wrong, what is valid, and what to do next. The CLI turns them
into a message and an exit code at the boundary; nothing else catches them silently.

    DatawheelError
    ├── ConfigError            bad or unknown key in datawheel.yaml, unknown option value
    │   └── NotFoundError      an id or name that does not exist (HTTP 404)
    ├── AuthError              a missing, invalid or revoked API key or password (HTTP 401)
    ├── AccessError            a role or group that does not allow the action (HTTP 403)
    ├── WorkspaceError         no workspace at a path, or one that cannot be opened
    ├── SourceError            a file or export that cannot be read (reported, then skipped)
    ├── MissingExtraError      an optional part is used without its extra installed
    ├── ModelError             an embedding model path that cannot be loaded
    └── StorageError           object storage (S3, MinIO): no bucket, refused credentials,
                               an unreachable endpoint, a model version missing there
"""

from __future__ import annotations


class DatawheelError(Exception):
    """Base of every error datawheel raises on purpose."""

    exit_code = 1


class ConfigError(DatawheelError):
    """A setting is unknown or invalid; the message names the valid choices."""

    exit_code = 2


class NotFoundError(ConfigError):
    """An interaction, user, version or file that does not exist."""


class AuthError(DatawheelError):
    """The caller could not be identified: no key, a wrong key, a revoked key."""

    exit_code = 2


class AccessError(DatawheelError):
    """The caller is known but their role does not allow the action."""

    exit_code = 2


class WorkspaceError(DatawheelError):
    """A workspace is missing, or is not a datawheel workspace."""

    exit_code = 2


class SourceError(DatawheelError):
    """A source file or export cannot be read. Ingest records it and goes on."""


class MissingExtraError(DatawheelError):
    """An optional dependency is not installed."""

    exit_code = 2

    def __init__(self, what: str, extra: str) -> None:
        super().__init__(
            f"{what} is not available - install it with: pip install 'datawheel[{extra}]'"
        )


class ModelError(DatawheelError):
    """An embedding model cannot be found or loaded."""

    exit_code = 2


class StorageError(DatawheelError):
    """Object storage refused or could not be reached; the message names the setting to fix.

    ``reason`` is one of ``no_bucket``, ``credentials``, ``unreachable``, ``missing`` (an
    object that is not there) or ``failed`` (anything else).
    """

    exit_code = 2

    def __init__(self, message: str, reason: str = "failed") -> None:
        super().__init__(message)
        self.reason = reason
