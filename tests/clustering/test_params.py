"""Every hotspot method takes keywords only and reads its parameters back for the run record."""

from __future__ import annotations

import importlib
import json
import pkgutil
from typing import Any

import numpy as np
import pytest

import clustering
from clustering.choice import ForecastChoice
from clustering.dbscan import DBSCAN, HDBSCAN
from clustering.emerging import EmergingHotspots
from clustering.evaluation import Backtest
from clustering.forecast import CellForecast
from clustering.gistar import GiStar
from clustering.kde import KernelDensity
from clustering.learned import LearnedForecast
from clustering.params import Estimator
from clustering.prospective import ProspectiveHotspots

# Each method with some parameters set, away from the defaults where there are defaults.
GIVEN: dict[type[Estimator], dict[str, Any]] = {
    DBSCAN: {"eps_m": 150.0, "min_samples": 10},
    HDBSCAN: {"min_cluster_size": 15, "min_samples": 5},
    KernelDensity: {"cell_size_m": 100.0, "bandwidth_m": 250.0, "kernel": "quartic"},
    GiStar: {"cell_size_m": 100.0, "distance_band_m": 300.0, "fdr": False, "alpha": 0.01},
    EmergingHotspots: {"cell_size_m": 100.0, "distance_band_m": 300.0, "tz": "America/Chicago"},
    ProspectiveHotspots: {"cell_size_m": 150.0, "bandwidth_m": 400.0, "weeks": 6},
    Backtest: {"train_weeks": 8, "methods": ("naive", "gistar"), "gistar_distance_band_m": 500.0},
    CellForecast: {"method": "blend", "weeks": 6, "short_weight": 0.25},
    LearnedForecast: {"cell_size_m": 250.0, "weeks": 18, "max_leaf_nodes": 7},
    ForecastChoice: {"cell_size_m": 250.0, "before": "2017-07-03", "methods": ("naive", "kde")},
}


def estimator_classes() -> set[type[Estimator]]:
    """Every Estimator defined in the clustering package, found by importing all its modules."""
    for module in pkgutil.iter_modules(clustering.__path__):
        importlib.import_module(f"clustering.{module.name}")
    found: set[type[Estimator]] = set()
    todo = list(Estimator.__subclasses__())
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("clustering."):
            found.add(cls)
        todo += cls.__subclasses__()
    return found


def test_every_method_class_is_an_estimator_listed_here() -> None:
    assert estimator_classes() == set(GIVEN)


@pytest.mark.parametrize("cls", list(GIVEN), ids=lambda c: c.__name__)
def test_get_params_round_trips_and_is_json(cls: type[Estimator]) -> None:
    model = cls(**GIVEN[cls])
    params = model.get_params()
    assert list(params) == cls.param_names()
    assert type(model)(**params).get_params() == params
    assert json.loads(json.dumps(params)) == params
    for name, value in GIVEN[cls].items():
        assert params[name] == (list(value) if isinstance(value, tuple) else value)


@pytest.mark.parametrize("cls", list(GIVEN), ids=lambda c: c.__name__)
def test_positional_parameters_are_refused(cls: type[Estimator]) -> None:
    first = next(iter(GIVEN[cls].values()))
    with pytest.raises(TypeError):
        cls(first)


def test_numpy_numbers_are_recorded_as_python_numbers() -> None:
    params = GiStar(cell_size_m=np.float64(100), distance_band_m=np.int64(300)).get_params()
    assert type(params["cell_size_m"]) is float and type(params["distance_band_m"]) is int
    json.dumps(params)


def test_a_method_class_with_positional_parameters_cannot_be_defined() -> None:
    with pytest.raises(TypeError, match="only keywords"):

        class Loose(Estimator):
            def __init__(self, cell_size_m: float) -> None:
                self.cell_size_m = cell_size_m
