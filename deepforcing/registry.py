"""A registry of named implementations and their config classes, each resolved lazily on first use.

An entry is ``name -> ("impl.module:Class", "config.module:ConfigClass")``. Registering a name imports nothing;
resolving the config class imports only the config's module (torch-free by convention, so listing commands such
as ``methods list`` never import torch); building an instance imports the implementation's module as well.
Unknown names raise one :class:`~deepforcing.errors.UserError` with a close match and the list of choices.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from deepforcing.errors import UserError


def _load(spec: str) -> Any:
    """The object named by ``"module:attribute"``."""
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


class LazyRegistry:
    """Name -> (implementation class, frozen config class), imported on first use.

    Args:
        kind: What the entries are (for error messages), e.g. ``cache policy``.
        entries: ``name -> ("impl.module:Class", "config.module:ConfigClass")``.
    """

    def __init__(self, kind: str, entries: dict[str, tuple[str, str]]):
        self.kind = kind
        for name, spec in entries.items():
            if not (isinstance(spec, tuple) and len(spec) == 2 and all(s.count(":") == 1 for s in spec)):
                raise ValueError(f"{kind} '{name}': expected ('module:Class', 'module:ConfigClass'), got {spec!r}")
        self._entries = dict(entries)

    def available(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def _spec(self, name: str) -> tuple[str, str]:
        if name not in self._entries:
            close = difflib.get_close_matches(name, self.available(), n=1)
            hint = (f"did you mean '{close[0]}'? " if close else "") + f"choose one of: {', '.join(self.available())}"
            raise UserError(f"unknown {self.kind} '{name}'", hint)
        return self._entries[name]

    def resolve(self, name: str) -> tuple[type, type]:
        """(implementation class, config class) of ``name`` (imports the implementation's module)."""
        impl, cfg = self._spec(name)
        return _load(impl), _load(cfg)

    def config_class(self, name: str) -> type:
        """The frozen config dataclass of ``name`` (imports only the config's module)."""
        return _load(self._spec(name)[1])

    def build(self, name: str, cfg: Any = None) -> Any:
        """Instantiate ``name`` with its config (the default config if None)."""
        impl, cfg_cls = self.resolve(name)
        return impl(cfg if cfg is not None else cfg_cls())
