"""The forecast of the coming week on grid cells: one estimator for every method a run may use.

`CellForecast` scores given cells (ix, iy) for the week after the data, from the incidents of the
`weeks` whole weeks before `forecast_week` only (older ones, and those of the forecast week or
later, are ignored):

- naive: the incidents of the weeks in the cell;
- blend: (1 - short_weight) × the cell's weekly rate over all the weeks + short_weight × its
  weekly rate over the last `short_weeks` of them (a long memory for places that stay hot, a
  short one for what flares up);
- kde: kernel density (clustering.kde, `kernel`, `bandwidth_m`) at the cell centres;
- gistar: Gi* z-scores (clustering.gistar, `distance_band_m`, `min_incidents`); cells it did not
  test rank last. Raises TooFewIncidents below `min_incidents`;
- prospective: prospective risk (clustering.prospective, `bandwidth_m`, over the weeks);
- learned: a Poisson gradient-boosting model trained on the weeks (clustering.learned).

Ties. Counting methods tie often where counts are small (a kommun with a few hundred incidents
has many cells with one). So every forecast also has a secondary score, `tiebreak_`: the
incidents of the weeks in the cell and its eight neighbours. Among cells of equal risk the one
amid more incidents ranks first; only cells equal in both fall back to the cell key (iy, then ix),
which is arbitrary but stable. `clustering.evaluation.flag_top_cells` ranks this way.

With no incident in the weeks every risk is 0 (Gi* raises TooFewIncidents); `n_incidents_` says
how many counted, so a caller can say "not computed" instead of flagging arbitrary cells.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.ndimage
import shapely

from clustering.gistar import GiStar
from clustering.kde import KernelDensity
from clustering.learned import LearnedForecast
from clustering.params import Estimator
from clustering.prospective import ProspectiveHotspots, raster_at
from geo.grid import GridWindow
from geo.points import as_xy

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

ForecastMethod = Literal["naive", "blend", "kde", "gistar", "prospective", "learned"]
FORECAST_METHODS: tuple[ForecastMethod, ...] = (
    "naive",
    "blend",
    "kde",
    "gistar",
    "prospective",
    "learned",
)
# The parameters each method reads besides cell_size_m and weeks (what a run records).
METHOD_PARAMS: dict[str, tuple[str, ...]] = {
    "naive": (),
    "blend": ("short_weeks", "short_weight"),
    "kde": ("bandwidth_m", "kernel"),
    "gistar": ("distance_band_m", "min_incidents"),
    "prospective": ("bandwidth_m",),
    "learned": ("max_leaf_nodes", "seed"),
}


class CellForecast(Estimator):
    """Risk of the week after the data for given cells, by one method (see the module docstring).

    Parameters: method, one of FORECAST_METHODS; cell_size_m, the grid; weeks, how many whole
    weeks before the forecast week count; bandwidth_m (kde, prospective); kernel (kde);
    distance_band_m and min_incidents (gistar); short_weeks and short_weight (blend);
    max_leaf_nodes and seed (learned).

    Learned by `fit`: risk_ and tiebreak_ (one value per given cell), n_incidents_ (incidents of
    the weeks) and, for the learned method, model_ (the fitted LearnedForecast).
    """

    risk_: FloatArray
    tiebreak_: FloatArray
    n_incidents_: int
    model_: LearnedForecast | None

    def __init__(
        self,
        *,
        method: ForecastMethod = "naive",
        cell_size_m: float = 150.0,
        weeks: int = 12,
        bandwidth_m: float = 400.0,
        kernel: Literal["gaussian", "quartic"] = "quartic",
        distance_band_m: float = 400.0,
        min_incidents: int = 30,
        short_weeks: int = 4,
        short_weight: float = 0.5,
        max_leaf_nodes: int = 15,
        seed: int = 0,
    ) -> None:
        self.method = method
        self.cell_size_m = cell_size_m
        self.weeks = weeks
        self.bandwidth_m = bandwidth_m
        self.kernel = kernel
        self.distance_band_m = distance_band_m
        self.min_incidents = min_incidents
        self.short_weeks = short_weeks
        self.short_weight = short_weight
        self.max_leaf_nodes = max_leaf_nodes
        self.seed = seed

    def method_params(self) -> dict[str, Any]:
        """The parameters the chosen method uses: method, cell_size_m, weeks and its own."""
        params = self.get_params()
        names = ("method", "cell_size_m", "weeks", *METHOD_PARAMS[self.method])
        return {name: params[name] for name in names}

    def fit(
        self,
        points: Any,
        week: Any,
        forecast_week: int,
        *,
        cells: tuple[Any, Any],
        area: shapely.Geometry | None = None,
        categories: Any = None,
    ) -> CellForecast:
        """Score the cells (ix, iy) for forecast_week from points (metres) and their week numbers.

        `area` limits KDE and Gi* to its cells (incidents outside still reach in for KDE);
        `categories` (one code per point) feed the learned method's category mix.
        """
        self._check_params()
        xy = as_xy(points)
        week_arr = np.asarray(week, dtype=np.int64)
        if week_arr.shape != (len(xy),):
            raise ValueError(f"week must have shape ({len(xy)},), got {week_arr.shape}")
        ix, iy = (np.asarray(c, dtype=np.int64) for c in cells)
        keep = (week_arr >= forecast_week - self.weeks) & (week_arr < forecast_week)
        xy, week_arr = xy[keep], week_arr[keep]
        cats = None if categories is None else np.asarray(categories, dtype=object)[keep]
        self.n_incidents_ = len(xy)
        self.tiebreak_ = neighbourhood_counts(xy, ix, iy, float(self.cell_size_m), ring=1)
        self.model_ = None
        self.risk_ = self._risk(xy, week_arr, int(forecast_week), ix, iy, area, cats)
        return self

    def _risk(
        self,
        xy: FloatArray,
        week: IntArray,
        forecast_week: int,
        ix: IntArray,
        iy: IntArray,
        area: shapely.Geometry | None,
        categories: npt.NDArray[np.object_] | None,
    ) -> FloatArray:
        c = float(self.cell_size_m)
        if self.method == "naive":
            return neighbourhood_counts(xy, ix, iy, c, ring=0)
        if self.method == "blend":
            return blend_rates(
                xy, week, forecast_week, ix, iy, c, self.weeks, self.short_weeks, self.short_weight
            )
        if self.method == "prospective":
            model = ProspectiveHotspots(
                cell_size_m=c, bandwidth_m=self.bandwidth_m, weeks=self.weeks
            )
            return model.fit(xy, week, forecast_week).risk_at(ix, iy)
        if self.method == "gistar":
            gi = GiStar(
                cell_size_m=c,
                distance_band_m=self.distance_band_m,
                min_incidents=self.min_incidents,
            ).fit(xy, area=area)
            return raster_at(np.nan_to_num(gi.z_, nan=-np.inf), gi.window_, ix, iy, -np.inf)
        if len(xy) == 0:
            return np.zeros(len(ix))
        if self.method == "kde":
            kde = KernelDensity(cell_size_m=c, bandwidth_m=self.bandwidth_m, kernel=self.kernel)
            kde.fit(xy, area=area)
            return raster_at(np.nan_to_num(kde.density_, nan=0.0), kde.window_, ix, iy, 0.0)
        learned = LearnedForecast(
            cell_size_m=c, weeks=self.weeks, max_leaf_nodes=self.max_leaf_nodes, seed=self.seed
        )
        self.model_ = learned.fit(xy, week, forecast_week, cells=(ix, iy), categories=categories)
        return learned.predict(xy, week, forecast_week, cells=(ix, iy), categories=categories)

    def _check_params(self) -> None:
        if self.method not in FORECAST_METHODS:
            known = ", ".join(FORECAST_METHODS)
            raise ValueError(f"unknown method {self.method!r}; use one of {known}")
        for name in ("weeks", "short_weeks"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        if not 0.0 <= self.short_weight <= 1.0:
            raise ValueError(f"short_weight must lie in [0, 1], got {self.short_weight}")


def neighbourhood_counts(
    xy: FloatArray, ix: IntArray, iy: IntArray, cell_size_m: float, ring: int
) -> FloatArray:
    """Return, per cell (ix, iy), the points in it and the `ring` rings of cells around it
    (ring 0: the cell itself; 1: its 3 × 3 block; 2: its 5 × 5 block)."""
    if len(ix) == 0:
        return np.zeros(0)
    window = GridWindow.from_cells(ix, iy, cell_size_m, pad_cells=ring)
    raster = window.bin(xy[:, 0], xy[:, 1])
    if ring > 0:
        block = np.ones((2 * ring + 1, 2 * ring + 1))
        raster = scipy.ndimage.correlate(raster, block, mode="constant", cval=0.0)
    return raster_at(raster, window, ix, iy, fill=0.0)


def blend_rates(
    xy: FloatArray,
    week: IntArray,
    forecast_week: int,
    ix: IntArray,
    iy: IntArray,
    cell_size_m: float,
    weeks: int,
    short_weeks: int,
    short_weight: float,
) -> FloatArray:
    """Return (1 - short_weight) × the weekly rate over `weeks` weeks before forecast_week +
    short_weight × the weekly rate over the last `short_weeks` (at most `weeks`) of them."""
    short = min(int(short_weeks), int(weeks))
    before = week < forecast_week
    whole = before & (week >= forecast_week - weeks)
    recent = before & (week >= forecast_week - short)
    long_rate = neighbourhood_counts(xy[whole], ix, iy, cell_size_m, ring=0) / weeks
    short_rate = neighbourhood_counts(xy[recent], ix, iy, cell_size_m, ring=0) / short
    return (1.0 - short_weight) * long_rate + short_weight * short_rate
