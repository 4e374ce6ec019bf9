"""datawheel: run a company's AI data flywheel on one machine.

Example:
    >>> from datawheel import Workspace
    >>> ws = Workspace.init("kb")
    >>> ws.ingest(["docs/"])
    >>> ws.search("refund policy", k=5)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from datawheel.errors import (
    ConfigError,
    DatawheelError,
    MissingExtraError,
    ModelError,
    SourceError,
    WorkspaceError,
)

if TYPE_CHECKING:
    from datawheel.workspace import SearchHit, Workspace

__all__ = [
    "ConfigError",
    "DatawheelError",
    "MissingExtraError",
    "ModelError",
    "SearchHit",
    "SourceError",
    "Workspace",
    "WorkspaceError",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The workspace imports every capability (pandas, SQLAlchemy, the models); load it on
    # first use, so that `import datawheel.tables` stays small and quick.
    if name in ("SearchHit", "Workspace"):
        from datawheel import workspace

        return getattr(workspace, name)
    raise AttributeError(f"module 'datawheel' has no attribute {name!r}")
