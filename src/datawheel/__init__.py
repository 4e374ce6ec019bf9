"""datawheel: run a company's AI data flywheel on one machine.

Example:
    >>> from datawheel import Workspace
    >>> ws = Workspace.init("kb")
    >>> ws.ingest(["docs/"])
    >>> ws.search("refund policy", k=5)
"""

from datawheel.errors import (
    ConfigError,
    DatawheelError,
    MissingExtraError,
    ModelError,
    SourceError,
    WorkspaceError,
)
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
