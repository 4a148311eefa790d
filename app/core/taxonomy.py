"""The category taxonomy shipped in data/categories.yaml: categories, groups, polisen.se types."""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from app.core import DATA_DIR

DEFAULT_PATH = DATA_DIR / "categories.yaml"

CODE_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
MAX_CATEGORY_CODE = 128  # est.category.code is varchar(128)
MAX_GROUP_CODE = 64  # est.category_group.code is varchar(64)
ALL_PATTERN = "*"

_NODE_KEYS = {"code", "sv", "en", "sensitive", "description", "children"}
_GROUP_KEYS = {"code", "sv", "en", "patterns"}
_TOP_KEYS = {"version", "categories", "groups", "polisen"}


@dataclass(frozen=True)
class Category:
    """One node of the taxonomy; `sensitive` is the effective value (inherited from ancestors)."""

    code: str
    parent_code: str | None
    sv: str
    en: str
    sensitive: bool
    description: str | None
    depth: int


@dataclass(frozen=True)
class CategoryGroup:
    """A named set of categories given by patterns, with `codes` the sorted expansion."""

    code: str
    sv: str
    en: str
    patterns: list[str]
    codes: list[str]


@dataclass(frozen=True)
class Taxonomy:
    """The categories in tree order (parents first), the groups and the polisen.se mapping."""

    categories: list[Category]
    groups: list[CategoryGroup]
    polisen: dict[str, str | None]
    by_code: dict[str, Category] = field(init=False)
    _groups_by_code: dict[str, CategoryGroup] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        """Index the categories and groups by code."""
        object.__setattr__(self, "by_code", {c.code: c for c in self.categories})
        object.__setattr__(self, "_groups_by_code", {g.code: g for g in self.groups})

    def is_sensitive(self, code: str) -> bool:
        """Whether a category is sensitive, itself or through an ancestor (KeyError if unknown)."""
        if code not in self.by_code:
            raise KeyError(f"unknown category {code!r}")
        return self.by_code[code].sensitive

    def expand(self, pattern: str) -> list[str]:
        """The category codes a pattern matches ("x.*" = x and its descendants), in tree order."""
        return _expand(pattern, [c.code for c in self.categories], self.by_code)

    def group_codes(self, group_code: str) -> list[str]:
        """The sorted category codes of a group (KeyError if the group is unknown)."""
        if group_code not in self._groups_by_code:
            raise KeyError(f"unknown category group {group_code!r}")
        return list(self._groups_by_code[group_code].codes)

    def children(self, code: str) -> list[Category]:
        """The direct children of a category, in tree order."""
        return [c for c in self.categories if c.parent_code == code]


def load_taxonomy(path: Path | None = None) -> Taxonomy:
    """Read and validate a taxonomy file (default: the shipped data/categories.yaml)."""
    source = DEFAULT_PATH if path is None else path
    with source.open(encoding="utf-8") as f:
        raw = yaml.load(f, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    try:
        return parse_taxonomy(raw)
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from e


def parse_taxonomy(raw: Any) -> Taxonomy:
    """Build a Taxonomy from the parsed YAML document, raising ValueError on any inconsistency."""
    if not isinstance(raw, dict):
        raise ValueError("the taxonomy must be a mapping with categories, groups and polisen")
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise ValueError(f"unknown top-level keys: {', '.join(map(str, unknown))}")
    nodes = raw.get("categories")
    if not isinstance(nodes, list) or not nodes:
        raise ValueError("'categories' must be a non-empty list")
    categories: list[Category] = []
    _walk(nodes, None, False, categories, set())
    by_code = {c.code: c for c in categories}
    codes = [c.code for c in categories]
    groups = _parse_groups(raw.get("groups") or [], codes, by_code)
    polisen = _parse_polisen(raw.get("polisen") or {}, by_code)
    return Taxonomy(categories=categories, groups=groups, polisen=polisen)


def _walk(
    nodes: Any,
    parent: Category | None,
    parent_sensitive: bool,
    out: list[Category],
    seen: set[str],
) -> None:
    """Append the nodes and their descendants to `out` in tree order, validating each."""
    where = "the top level" if parent is None else f"the children of {parent.code!r}"
    if not isinstance(nodes, list):
        raise ValueError(f"{where} must be a list of categories")
    for node in nodes:
        if not isinstance(node, dict):
            raise ValueError(f"every entry of {where} must be a mapping, got {node!r}")
        code = node.get("code")
        if not isinstance(code, str) or not code:
            raise ValueError(f"a category in {where} has no code")
        if not CODE_RE.match(code):
            raise ValueError(
                f"category code {code!r} is invalid: use lowercase ASCII letters, digits and _ "
                "in dot-separated segments that start with a letter"
            )
        if len(code) > MAX_CATEGORY_CODE:
            raise ValueError(f"category code {code!r} is longer than {MAX_CATEGORY_CODE}")
        extra = sorted(set(node) - _NODE_KEYS)
        if extra:
            raise ValueError(f"category {code!r} has unknown keys: {', '.join(map(str, extra))}")
        if code in seen:
            raise ValueError(f"duplicate category code {code!r}")
        if parent is None and "." in code:
            raise ValueError(f"top-level category code {code!r} must not contain a dot")
        if parent is not None:
            prefix = parent.code + "."
            if not code.startswith(prefix) or "." in code[len(prefix) :]:
                raise ValueError(
                    f"category code {code!r} must be its parent's code {parent.code!r} "
                    "followed by '.' and one more segment"
                )
        sv = _label(node, "sv", f"category {code!r}")
        en = _label(node, "en", f"category {code!r}")
        description = node.get("description")
        if description is not None and (not isinstance(description, str) or not description):
            raise ValueError(f"category {code!r}: description must be a non-empty string")
        own = node.get("sensitive", False)
        if not isinstance(own, bool):
            raise ValueError(f"category {code!r}: sensitive must be true or false")
        if parent_sensitive and "sensitive" in node and not own:
            raise ValueError(
                f"category {code!r} cannot be sensitive: false under a sensitive parent "
                "(sensitivity is inherited)"
            )
        category = Category(
            code=code,
            parent_code=None if parent is None else parent.code,
            sv=sv,
            en=en,
            sensitive=parent_sensitive or own,
            description=description.strip() if description else None,
            depth=code.count("."),
        )
        seen.add(code)
        out.append(category)
        if "children" in node and node["children"] is not None:
            _walk(node["children"], category, category.sensitive, out, seen)


def _label(node: dict[str, Any], key: str, what: str) -> str:
    """A required, non-blank label of a category or group."""
    value = node.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} is missing its {key!r} label")
    return value.strip()


def _expand(pattern: str, codes: list[str], by_code: dict[str, Any]) -> list[str]:
    """Expand a pattern against the codes in tree order; ValueError if it matches nothing."""
    if pattern == ALL_PATTERN:
        return list(codes)
    if pattern.endswith(".*"):
        base = pattern[:-2]
        if not CODE_RE.match(base):
            raise ValueError(f"pattern {pattern!r} is not a code, 'code.*' or '*'")
        matched = [c for c in codes if c == base or c.startswith(base + ".")]
    else:
        if not CODE_RE.match(pattern):
            raise ValueError(f"pattern {pattern!r} is not a code, 'code.*' or '*'")
        matched = [pattern] if pattern in by_code else []
    if not matched:
        raise ValueError(f"pattern {pattern!r} matches no category")
    return matched


def _parse_groups(raw: Any, codes: list[str], by_code: dict[str, Category]) -> list[CategoryGroup]:
    """Validate the groups and expand their patterns."""
    if not isinstance(raw, list):
        raise ValueError("'groups' must be a list")
    groups: list[CategoryGroup] = []
    seen: set[str] = set()
    for node in raw:
        if not isinstance(node, dict):
            raise ValueError(f"every group must be a mapping, got {node!r}")
        code = node.get("code")
        if not isinstance(code, str) or not CODE_RE.match(code) or "." in code:
            raise ValueError(
                f"group code {code!r} is invalid: use lowercase ASCII letters, digits and _"
            )
        if len(code) > MAX_GROUP_CODE:
            raise ValueError(f"group code {code!r} is longer than {MAX_GROUP_CODE}")
        extra = sorted(set(node) - _GROUP_KEYS)
        if extra:
            raise ValueError(f"group {code!r} has unknown keys: {', '.join(map(str, extra))}")
        if code in seen:
            raise ValueError(f"duplicate group code {code!r}")
        seen.add(code)
        patterns = node.get("patterns")
        if (
            not isinstance(patterns, list)
            or not patterns
            or not all(isinstance(p, str) for p in patterns)
        ):
            raise ValueError(f"group {code!r} needs a non-empty list of patterns")
        expanded: set[str] = set()
        for pattern in patterns:
            try:
                expanded.update(_expand(pattern, codes, by_code))
            except ValueError as e:
                raise ValueError(f"group {code!r}: {e}") from e
        groups.append(
            CategoryGroup(
                code=code,
                sv=_label(node, "sv", f"group {code!r}"),
                en=_label(node, "en", f"group {code!r}"),
                patterns=list(patterns),
                codes=sorted(expanded),
            )
        )
    return groups


def _parse_polisen(raw: Any, by_code: dict[str, Category]) -> dict[str, str | None]:
    """Validate the polisen.se type mapping: every target is a known code or null."""
    if not isinstance(raw, dict):
        raise ValueError("'polisen' must be a mapping from event type to category code or null")
    mapping: dict[str, str | None] = {}
    for event_type, code in raw.items():
        if not isinstance(event_type, str) or not event_type.strip():
            raise ValueError(f"polisen event type {event_type!r} must be a non-empty string")
        if code is not None and (not isinstance(code, str) or code not in by_code):
            raise ValueError(
                f"polisen event type {event_type!r} maps to unknown category code {code!r}"
            )
        mapping[event_type] = code
    return mapping


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects a mapping with the same key twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        """Construct a mapping, raising ValueError on a duplicate key."""
        keys: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in keys:
                raise ValueError(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
            keys.add(key)
        return super().construct_mapping(node, deep=deep)
