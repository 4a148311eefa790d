"""CQL2 text filters: parsed by pygeofilter, translated to SQL with bound parameters only.

What is translated: comparisons of a property with a value (=, <>, <, <=, >, >=), AND, OR, NOT,
IS [NOT] NULL, LIKE, BETWEEN, IN (the advanced comparison operators) and S_INTERSECTS of the
geometry with a WKT geometry or BBOX(…). Property names are checked against the caller's
queryables and become quoted column names of the registry; every value is a bound parameter.

pygeofilter 0.4's CQL2 text grammar gives AND and OR the same precedence, takes
`NOT (a OR b)` for an error, cannot read a doubled quote in a string and no property name of
one letter (Gi*'s `z`); the grammar is read from the package and those rules are corrected
before the parser is built.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import shapely
from lark import Lark
from lark.exceptions import LarkError
from pygeofilter import ast, values
from pygeofilter.parsers.cql2_text import parser as cql2_text

from app.api.ogc.collections import SQL_TYPES, Property, intersects
from app.core.errors import InvalidParameter

GEOMETRY = "geometry"  # the name of the geometry in filters and queryables

_PRECEDENCE = """?condition: condition_and
          | condition "OR"i condition_and                                  -> or_

?condition_and: condition_1
              | condition_and "AND"i condition_1                           -> and_

?condition_1: predicate
            | "NOT"i condition_1                                           -> not_
            | "(" condition ")"

"""
_QUOTED_OLD = 'SINGLE_QUOTED: "\'" /.*?/ "\'"'
_QUOTED_NEW = "SINGLE_QUOTED: /'(?:[^']|'')*'/"
_NAME_OLD = "attribute: /[a-zA-Z][a-zA-Z_:0-9.]+/"
_NAME_NEW = "attribute: /[a-zA-Z][a-zA-Z_:0-9.]*/"


class _Transformer(cql2_text.CQLTransformer):
    """pygeofilter's transformer, reading '' inside a string as one quote."""

    def SINGLE_QUOTED(self, token: str) -> str:  # noqa: N802 (the grammar's terminal name)
        return token[1:-1].replace("''", "'")


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = Path(cql2_text.__file__).with_name("grammar.lark").read_text(encoding="utf-8")
    start, end = grammar.find("?condition:"), grammar.find("?predicate:")
    if 0 <= start < end:  # a later pygeofilter may have fixed it differently: keep its own then
        grammar = grammar[:start] + _PRECEDENCE + grammar[end:]
    grammar = grammar.replace(_QUOTED_OLD, _QUOTED_NEW).replace(_NAME_OLD, _NAME_NEW)
    return Lark(
        grammar,
        parser="lalr",
        maybe_placeholders=False,
        transformer=_Transformer(),
        import_paths=[os.path.dirname(os.path.dirname(cql2_text.__file__))],
    )


def parse(text: str) -> ast.Node:
    """The syntax tree of a CQL2 text filter, or a 400 saying where it could not be read."""
    try:
        node = _parser().parse(text)
    except LarkError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidParameter(f"filter is not CQL2 text that is served here: {first}") from None
    except (ValueError, TypeError) as exc:  # a transformer's conversion (a date, a number)
        raise InvalidParameter(f"filter holds a value that cannot be read: {exc}") from None
    if not isinstance(node, ast.Node):
        raise InvalidParameter("filter must be a condition, e.g. incident_count >= 10")
    return node


@dataclass
class Bindings:
    """The bound parameters of one query: every value gets a name of its own."""

    prefix: str = "f"
    values: dict[str, Any] = field(default_factory=dict)

    def bind(self, value: Any, sql_type: str | None = None) -> str:
        """A placeholder for the value, cast to the SQL type when one is given."""
        name = f"{self.prefix}{len(self.values)}"
        self.values[name] = value
        return f"CAST(:{name} AS {sql_type})" if sql_type else f":{name}"


_COMPARISONS: Mapping[type, tuple[str, str]] = {
    ast.Equal: ("=", "="),
    ast.NotEqual: ("<>", "<>"),
    ast.LessThan: ("<", ">"),
    ast.LessEqual: ("<=", ">="),
    ast.GreaterThan: (">", "<"),
    ast.GreaterEqual: (">=", "<="),
}


@dataclass
class Translator:
    """Turns one syntax tree into SQL over the columns of `v` (the caller's visible rows)."""

    queryables: Mapping[str, Property]
    bindings: Bindings
    to_storage: Callable[[shapely.Geometry], bytes]  # a filter geometry as storage-CRS WKB
    srid: int

    def sql(self, node: Any) -> str:
        """The SQL of a condition."""
        if isinstance(node, ast.And | ast.Or):
            word = "AND" if isinstance(node, ast.And) else "OR"
            return f"({self.sql(node.lhs)} {word} {self.sql(node.rhs)})"
        if isinstance(node, ast.Not):
            return f"(NOT {self.sql(node.sub_node)})"
        if isinstance(node, ast.Include):
            return "false" if node.not_ else "true"
        if type(node) in _COMPARISONS:
            return self._comparison(node)
        if isinstance(node, ast.IsNull):
            prop = self._property(node.lhs)
            return f"({self._column(prop)} IS {'NOT ' if node.not_ else ''}NULL)"
        if isinstance(node, ast.Like):
            return self._like(node)
        if isinstance(node, ast.Between):
            prop = self._property(node.lhs)
            low, high = self._value(prop, node.low), self._value(prop, node.high)
            word = "NOT BETWEEN" if node.not_ else "BETWEEN"
            return f"({self._column(prop)} {word} {low} AND {high})"
        if isinstance(node, ast.In):
            prop = self._property(node.lhs)
            options = ", ".join(self._value(prop, v) for v in node.sub_nodes)
            return f"({self._column(prop)} {'NOT IN' if node.not_ else 'IN'} ({options}))"
        if isinstance(node, ast.GeometryIntersects):
            return self._intersects(node)
        raise InvalidParameter(f"filter: {_describe(node)} is not served here")

    def _property(self, node: Any) -> Property:
        if not isinstance(node, ast.Attribute):
            raise InvalidParameter(
                f"filter: compare a property with a value; {_describe(node)} is not a property"
            )
        prop = self.queryables.get(node.name)
        if prop is None or node.name == GEOMETRY:
            listed = ", ".join(sorted(self.queryables))
            raise InvalidParameter(
                f"filter: unknown property {node.name!r}; the queryables here are {listed}"
            )
        return prop

    def _column(self, prop: Property) -> str:
        if prop.type == "object":
            raise InvalidParameter(f"filter: {prop.name} holds an object and cannot be compared")
        if prop.equals is not None:
            raise InvalidParameter(f"filter: {prop.name} can only be compared with =")
        return f'v."{prop.name}"'

    def _value(self, prop: Property, value: Any) -> str:
        return self.bindings.bind(literal(prop, value), SQL_TYPES[prop.type])

    def _comparison(self, node: Any) -> str:
        forward, backward = _COMPARISONS[type(node)]
        lhs, rhs, op = node.lhs, node.rhs, forward
        if not isinstance(lhs, ast.Attribute):
            lhs, rhs, op = rhs, lhs, backward
        prop = self._property(lhs)
        if isinstance(rhs, ast.Attribute):
            raise InvalidParameter("filter: compare a property with a value, not with another")
        if prop.equals is not None:
            if op != "=":
                raise InvalidParameter(f"filter: {prop.name} can only be compared with =")
            return "(" + prop.equals.format(value=self._value(prop, rhs)) + ")"
        return f"({self._column(prop)} {op} {self._value(prop, rhs)})"

    def _like(self, node: Any) -> str:
        prop = self._property(node.lhs)
        if prop.type != "string":
            raise InvalidParameter(f"filter: LIKE compares text; {prop.name} is a {prop.type}")
        if not isinstance(node.pattern, str):
            raise InvalidParameter("filter: LIKE needs a pattern in quotes")
        word = "NOT LIKE" if node.not_ else "LIKE"
        return f"({self._column(prop)} {word} {self.bindings.bind(node.pattern, 'text')})"

    def _intersects(self, node: Any) -> str:
        name = getattr(node.lhs, "name", None)
        other = node.rhs
        if name != GEOMETRY:
            name, other = getattr(node.rhs, "name", None), node.lhs
        if name != GEOMETRY:
            raise InvalidParameter(
                f"filter: S_INTERSECTS compares the property {GEOMETRY!r} with a geometry"
            )
        wkb = self.to_storage(filter_geometry(other))
        return intersects(self.bindings.bind(wkb))


def literal(prop: Property, value: Any) -> Any:
    """A filter's value as the property's type, or a 400 naming both."""
    kind = prop.type
    ok = (
        (kind == "string" and isinstance(value, str))
        or (kind == "integer" and isinstance(value, int) and not isinstance(value, bool))
        or (kind == "number" and isinstance(value, int | float) and not isinstance(value, bool))
        or (kind == "boolean" and isinstance(value, bool))
        or (kind == "date-time" and isinstance(value, datetime))
    )
    if not ok:
        hint = " (write TIMESTAMP('2026-11-18T00:00:00Z'))" if kind == "date-time" else ""
        raise InvalidParameter(f"filter: {prop.name} is a {kind}; {_describe(value)} is not{hint}")
    if kind == "string" and prop.enum and value not in prop.enum:
        raise InvalidParameter(f"filter: {prop.name} is one of {', '.join(prop.enum)}")
    return value


def filter_geometry(node: Any) -> shapely.Geometry:
    """The geometry of a filter literal: WKT, BBOX(minx, miny, maxx, maxy) or ENVELOPE."""
    if isinstance(node, values.Geometry | values.Envelope):
        geometry = shapely.geometry.shape(node.geometry)
    elif isinstance(node, ast.Function) and node.name.lower() == "bbox":
        numbers = node.arguments
        if len(numbers) not in (4, 6) or not all(isinstance(n, int | float) for n in numbers):
            raise InvalidParameter("filter: BBOX takes 4 (or 6) numbers")
        if len(numbers) == 6:
            numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
        geometry = shapely.box(*numbers)
    else:
        raise InvalidParameter(f"filter: {_describe(node)} is not a geometry")
    if geometry.is_empty or not geometry.is_valid:
        raise InvalidParameter(
            f"filter: the geometry is not valid ({shapely.is_valid_reason(geometry)})"
        )
    return geometry


def _describe(node: Any) -> str:
    if isinstance(node, ast.Node):
        return type(node).__name__
    if isinstance(node, date | datetime):
        return f"the date {node.isoformat()}"
    return repr(node)
