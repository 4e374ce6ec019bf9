"""Package attributes that load their module on first use (PEP 562), so importing a
package for its settings does not import its engines."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_attributes(package: str, modules: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``package.<modules[name]>`` for ``name``.

    Example::

        __getattr__ = lazy_attributes(__name__, {"run_clean": "pipeline"})
    """

    def __getattr__(name: str) -> Any:
        if name in modules:
            return getattr(import_module(f"{package}.{modules[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
