"""YAML loading that remembers the line of every value, so validation errors can point at the file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from deepforcing.errors import UserError

#: Path of a value inside the document: keys and list indices, e.g. ``("methods", 2)``.
KeyPath = tuple[str | int, ...]

#: libyaml's parser when PyYAML was built with it (5-10x faster), else the pure-Python one; same nodes and marks.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _construct(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], scalars: yaml.SafeLoader) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _construct(key_node, (*path, "<key>"), {}, scalars)
            if key in out:
                raise UserError(f"line {key_node.start_mark.line + 1}: duplicate key '{key}'")
            out[key] = _construct(value_node, (*path, key), lines, scalars)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), lines, scalars) for i, item in enumerate(node.value)]
    return scalars.construct_object(node, deep=True)  # the scalar's resolved tag (int, float, bool, null, str)


def load_with_lines(path: str | Path) -> tuple[dict[str, Any], dict[KeyPath, int]]:
    """Parse a YAML mapping and the 1-based line of every key path.

    Args:
        path: YAML file.

    Returns:
        ``(data, lines)``; ``lines[()]`` is the document start, ``lines[("methods", 0)]`` the first method.

    Raises:
        UserError: Unreadable file, YAML syntax error (with its line), duplicate keys or a non-mapping document.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read {p}: {exc.strerror or exc}") from exc
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        raise UserError(f"{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from exc
    if node is None:
        raise UserError(f"{p}: empty file")
    lines: dict[KeyPath, int] = {}
    try:
        data = _construct(node, (), lines, yaml.SafeLoader(""))
    except UserError as exc:
        raise UserError(f"{p}: {exc.message}", exc.hint) from exc
    if not isinstance(data, dict):
        raise UserError(f"{p}:{lines[()]}: expected a mapping at the top level")
    return data, lines
