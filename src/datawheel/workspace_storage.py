"""The Workspace verbs for object storage: originals and model versions copied to a bucket.

A mixin of :class:`datawheel.workspace.Workspace`; the copying is done by
:mod:`datawheel.store.mirror`. Without ``storage.url`` everything stays in the workspace
folder and these verbs do nothing (``sync_storage`` says how to set it).

Example:
    >>> ws = Workspace.open("kb")
    >>> ws.sync_storage()   # retry every failed copy
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from datawheel.errors import ConfigError
from datawheel.workspace_part import WorkspacePart


class StorageMixin(WorkspacePart):
    """Object storage: the mirror, model folders fetched on demand, retried copies."""

    if TYPE_CHECKING:  # set by Workspace.__init__
        _objects: Any

    @property
    def objects(self) -> Any:
        """Object storage (``storage.url``): originals and model versions are copied there
        (``datawheel.store.mirror.Mirror``); None when unset, the workspace folder only."""
        if self._objects is None and self.config.storage.url:
            from datawheel.store.mirror import Mirror
            from datawheel.store.objects import ObjectStore

            self._objects = Mirror(ObjectStore(self.config.storage), self.store, self.path)
        return self._objects

    def model_folder(self, version: str, artifacts: str) -> Path:
        """The local folder of a registered model version. With object storage, a folder
        missing here (a fresh worker, another machine) is downloaded first."""
        if self.objects is None:
            return self.path / artifacts
        return Path(self.objects.fetch(version, artifacts))

    def sync_storage(self) -> dict[str, Any]:
        """Retry every failed copy to object storage now (originals and model versions)."""
        if self.objects is None:
            raise ConfigError("no object storage: set storage.url in datawheel.yaml first")
        return dict(self.objects.sync())

    def _fetch_current(self, kind: str) -> None:
        """Download the version of ``kind`` in use when its folder is missing here."""
        if self.objects is None:
            return
        from datawheel.improve.registry import Registry

        version = Registry(self.store, kind=kind).current()
        if version:
            self.objects.fetch(version)

    def _push_models(self) -> list[str]:
        """Copy model versions not in object storage yet; returns warnings (local copies stay)."""
        return list(self.objects.push_models()) if self.objects is not None else []
