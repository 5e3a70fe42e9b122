"""The self-supervised methods, one class each, registered by name in :data:`METHODS`.

Every module of this package is imported here, so a new method is one new file: a subclass of
:class:`~empirical.methods.base.Method` with a ``name`` (see that module for what it declares).
"""

from __future__ import annotations

import importlib
import pkgutil

from empirical.methods.base import METHODS, Method

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["METHODS", "Method", "get"]


def get(name: str) -> type[Method]:
    """The method class ``name``; ValueError naming the known methods otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}") from None
