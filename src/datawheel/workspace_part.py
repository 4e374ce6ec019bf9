"""The base of the Workspace's verb mixins: what they may use of the Workspace.

:class:`~datawheel.workspace.Workspace` is assembled from its core verbs and the mixins in
``workspace_feedback.py``, ``workspace_tables.py``, ``workspace_predict.py`` and
``workspace_storage.py``; each mixin derives from :class:`WorkspacePart`, which tells the
type checker which attributes the Workspace gives it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from pathlib import Path

    from datawheel.config import Config
    from datawheel.store.sql import SQLStore
    from datawheel.workspace import Workspace


class WorkspacePart:
    """A group of Workspace verbs, kept in its own module."""

    @property
    def _ws(self) -> Workspace:
        """This object, as the Workspace it is part of (for the type checker)."""
        return cast("Workspace", self)

    if TYPE_CHECKING:  # provided by Workspace
        path: Path
        config: Config
        store: SQLStore

        def _fetch_current(self, kind: str) -> None: ...

        def _push_models(self) -> list[str]: ...
