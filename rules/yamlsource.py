"""Read policy YAML keeping line numbers, so every error can name its line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from rules.problems import Problems


@dataclass(frozen=True)
class YamlDoc:
    """A parsed YAML file: the data (ruamel containers, which remember positions) and its path."""

    path: Path
    data: Any

    @property
    def name(self) -> str:
        return display_path(self.path)


def display_path(path: Path) -> str:
    """Paths in messages are relative to the working directory when possible."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_yaml(path: Path, problems: Problems) -> YamlDoc | None:
    """Parse one YAML file; a syntax error becomes a Problem with its line, and None is returned."""
    yaml = YAML(typ="rt")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(display_path(path), f"cannot read file: {exc}", f"无法读取文件：{exc}")
        return None
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        problems.add(
            display_path(path),
            f"YAML syntax error: {exc.problem}",
            f"YAML 语法错误：{exc.problem}",
            line=line,
        )
        return None
    return YamlDoc(path, data)


def line_of(node: Any, key: str | int | None = None) -> int | None:
    """1-based line of `node[key]` (or of `node` itself) when ruamel recorded it."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    try:
        if key is not None and isinstance(node, CommentedMap):
            return int(lc.key(key)[0]) + 1
        if key is not None and isinstance(node, CommentedSeq):
            return int(lc.item(key)[0]) + 1
        return int(lc.line) + 1
    except (KeyError, IndexError, TypeError):
        return int(lc.line) + 1 if getattr(lc, "line", None) is not None else None


def plain(node: Any) -> Any:
    """ruamel containers -> plain dict/list (for storing and hashing)."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node
