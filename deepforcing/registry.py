"""A registry of named implementations resolved lazily from ``"module:Class:ConfigClass"`` strings.

Registering a name imports nothing; resolving it imports only its module. Unknown names raise one
:class:`~deepforcing.errors.UserError` with a close match and the list of choices.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from deepforcing.errors import UserError


class LazyRegistry:
    """Name -> (implementation class, frozen config class), imported on first use.

    Args:
        kind: What the entries are (for error messages), e.g. ``cache policy``.
        entries: ``name -> "module:Class:ConfigClass"``.
    """

    def __init__(self, kind: str, entries: dict[str, str]):
        self.kind = kind
        self._entries = dict(entries)

    def available(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def resolve(self, name: str) -> tuple[type, type]:
        """(implementation class, config class) of ``name``."""
        if name not in self._entries:
            close = difflib.get_close_matches(name, self.available(), n=1)
            hint = (f"did you mean '{close[0]}'? " if close else "") + f"choose one of: {', '.join(self.available())}"
            raise UserError(f"unknown {self.kind} '{name}'", hint)
        module, cls, cfg = self._entries[name].split(":")
        mod = importlib.import_module(module)
        return getattr(mod, cls), getattr(mod, cfg)

    def config_class(self, name: str) -> type:
        """The frozen config dataclass of ``name``."""
        return self.resolve(name)[1]

    def build(self, name: str, cfg: Any = None) -> Any:
        """Instantiate ``name`` with its config (the default config if None)."""
        impl, cfg_cls = self.resolve(name)
        return impl(cfg if cfg is not None else cfg_cls())
