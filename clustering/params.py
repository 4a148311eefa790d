"""The estimator base: keyword-only constructor parameters that a run can read back and record.

As scikit-learn's BaseEstimator: the constructor only stores each parameter under its own name
on self, and `get_params` reads the names from the constructor's signature.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np


class Estimator:
    """Base of the hotspot methods: keyword-only parameters, readable back by `get_params`."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse, when the class is defined, a constructor that takes anything but keywords."""
        super().__init_subclass__(**kwargs)
        loose = [
            p.name for p in _init_parameters(cls) if p.kind is not inspect.Parameter.KEYWORD_ONLY
        ]
        if loose:
            raise TypeError(f"{cls.__name__}.__init__ must take only keywords, not {loose}")

    @classmethod
    def param_names(cls) -> list[str]:
        """Return the constructor's parameter names, in signature order."""
        return [p.name for p in _init_parameters(cls)]

    def get_params(self) -> dict[str, Any]:
        """Return the constructor parameters and their values, as JSON-friendly plain values."""
        return {name: _plain(getattr(self, name)) for name in self.param_names()}


def _init_parameters(cls: type) -> list[inspect.Parameter]:
    """Return the parameters of the class's constructor (those of __init__ after self)."""
    return list(inspect.signature(cls).parameters.values())


def _plain(value: Any) -> Any:
    """Return value with tuples as lists and numpy scalars as Python numbers, for JSON."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
