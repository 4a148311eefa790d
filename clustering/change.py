"""Has a weekly count changed? The one change test of the lägesbild, corrected for many tests.

A weekly report compares this week's count x of a category group with baselines: the mean of the
last 12 weeks, last week, the same week last year. Two tests cover them.

Against a mean of several weeks (`baseline_z`, kind "mean"), the mean m is taken as the known
Poisson rate. The reported score is the variance-stabilised

    z = 2 (√x − √m),

which is close to standard normal for a large Poisson(m) count because √X has variance ≈ 1/4;
it gives the size and sign of a change, and changes of either kind sort on it. The p-value does
not come from z: the normal tails are badly wrong for small means (at m = 1 a week with x = 0
scores z = −2, whose normal p is 0.046, yet it happens 37 % of the time). It is the exact
two-sided Poisson test instead, by the rule scipy's `binomtest` uses: the probability under
Poisson(m) of every count no more likely than the observed one, p = Σ pmf(k) over all k with
pmf(k) ≤ pmf(x) · (1 + 1e-7), capped at 1. Every mean below EXACT_BELOW_MEAN (a million) gets
this exact test, so the test never flags more than alpha of quiet weeks, whatever the mean;
only larger means, far beyond any weekly count and where the normal approximation is accurate
to a fraction of a percent, get the normal p, 2 · (1 − Φ(|z|)). A mean of 0 allows only x = 0:
x = 0 gives z = 0, p = 1, and x > 0 a certain change, z = 2√x, p = 0. The mean's own noise is
ignored (a 12-week mean has 1/12 of one week's variance, which raises false alarms slightly).

Against one other week (`two_count_test`, kind "count"), both counts are noisy, so the test is
conditional: given n = x + y, if the two weeks share one rate each incident falls in this week
with probability 1/2, X ~ Binomial(n, 1/2). The two-sided p-value is scipy's `binomtest`: the
probability of every outcome no more likely than the observed one (with its relative tolerance
1 + 1e-7 for ties); n = 0 gives p = 1. Its `z` is the normal quantile of p, Φ⁻¹(1 − p/2), with
the sign of x − y, so both kinds sort on one scale (±inf once p underflows, e.g. 1080 against 0).

A report makes its comparisons together (8 groups × 3 baselines = 24 tests). Tested one by one
at 0.05, a week in which nothing changed would still flag 24 × 0.05 ≈ 1.2 changes by chance, so
the report would announce a change nearly every week. `change_tests` therefore adjusts all
p-values of one report with Benjamini–Hochberg (clustering.fdr) and calls a change significant
when p_adjusted <= alpha, ALPHA = 0.05 by default: at most about 5 % of the flagged changes are
expected to be false, and in a quiet week the chance of flagging anything at all is about 5 %
(4 % in the tests' simulation of 24 comparisons with group means of 10 to 200, against 52 %
uncorrected; 1.5 % against 34 % with means of 1 to 40, where the discrete exact tests are
conservative).

    rows = [Comparison(count=42, baseline=30.5, kind="mean"), Comparison(42, 28, "count"), ...]
    for change in change_tests(rows):
        print(change.direction, change.significant, change.describe())
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
from scipy.stats import binom, norm, poisson

from clustering.fdr import benjamini_hochberg

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Kind = Literal["mean", "count"]
Direction = Literal["up", "down", "same"]

ALPHA = 0.05
KINDS: tuple[Kind, ...] = ("mean", "count")
# Means below this get the exact Poisson p-value, larger ones the normal p of z = 2(√x − √m).
EXACT_BELOW_MEAN = 1e6
# scipy.stats.binomtest counts an outcome as "no more likely" within this relative tolerance.
_BINOMTEST_RERR = 1 + 1e-7


class ZTest(NamedTuple):
    """Scores of counts against baseline means: z and two-sided p, one per count."""

    z: FloatArray
    p: FloatArray


class CountTest(NamedTuple):
    """Exact conditional tests of x against y: p, signed z, ratio x / y and sign of x − y."""

    p: FloatArray
    z: FloatArray
    ratio: FloatArray
    sign: IntArray


@dataclass(frozen=True)
class Comparison:
    """One comparison of a report: this week's count against a baseline mean or another count."""

    count: int
    baseline: float
    kind: Kind

    def __post_init__(self) -> None:
        """Reject a kind other than "mean" or "count" (change_tests checks the numbers)."""
        if self.kind not in KINDS:
            raise ValueError(f"kind must be 'mean' or 'count', got {self.kind!r}")


@dataclass(frozen=True)
class Change:
    """The outcome of one comparison, after the correction over all comparisons of its report."""

    count: int
    baseline: float
    kind: Kind
    z: float
    p: float
    p_adjusted: float
    direction: Direction
    significant: bool

    @property
    def ratio(self) -> float:
        """Return count / baseline (inf when only the baseline is 0, NaN when both are)."""
        return float(_ratio(np.float64(self.count), np.float64(self.baseline)))

    def describe(self) -> str:
        """Return a short phrase such as "up, significant (p_adj 0.003)"."""
        verdict = "significant" if self.significant else "not significant"
        return f"{self.direction}, {verdict} (p_adj {self.p_adjusted:.2g})"


# ---------------------------------------------------------------------------------------------
# The two tests


def baseline_z(count: Any, baseline_mean: Any) -> ZTest:
    """Return z = 2(√x − √m) and the two-sided p of counts x against known Poisson means m.

    p is the exact Poisson test (`_poisson_two_sided`) for m < EXACT_BELOW_MEAN and the normal
    2(1 − Φ(|z|)) above; x and m broadcast against each other.
    """
    x, m = np.broadcast_arrays(
        _checked(count, "count", whole=True), _checked(baseline_mean, "baseline_mean", whole=False)
    )
    z = 2.0 * (np.sqrt(x) - np.sqrt(m))
    p = np.array(2.0 * norm.sf(np.abs(z)), dtype=np.float64)
    exact = m < EXACT_BELOW_MEAN
    if exact.any():
        p[exact] = _poisson_two_sided(x[exact].astype(np.int64), m[exact])
    return ZTest(z, p[()])  # [()] makes a 0-d p a scalar, like z


def _poisson_two_sided(k: IntArray, m: FloatArray) -> FloatArray:
    """Return the exact two-sided Poisson p: Σ pmf(j; m) over all j with pmf(j) <= pmf(k)(1+1e-7).

    The pmf rises up to its mode floor(m) and falls after it, so the counts within the bound are
    j <= a, with a the last one at or below the mode, and j >= b, with b the first one above it;
    p = cdf(a) + sf(b − 1). Both ends are found by bisection; for b the search range is first
    widened (doubling its distance from the mode) until its top holds. A mean of 0 comes out as
    p = 1 for k = 0 and p = 0 for k > 0.
    """
    bound = poisson.pmf(k, m) * _BINOMTEST_RERR
    mode = np.floor(m).astype(np.int64)

    def within(j: IntArray) -> BoolArray:
        return np.asarray(poisson.pmf(j, m) <= bound, dtype=np.bool_)

    # Below the mode the pmf rises: a + 1 is the first j in [0, mode] with pmf(j) > bound.
    a = _first_true(lambda j: ~within(j), np.zeros_like(mode), mode) - 1
    # Above the mode it falls: b is the first j in [mode + 1, top] with pmf(j) <= bound.
    top = np.maximum(k, mode + 1)
    while not (done := within(top)).all():
        top = np.where(done, top, mode + 2 * (top - mode))
    b = _first_true(within, mode + 1, top)
    p = poisson.cdf(a, m) + poisson.sf(b - 1, m)
    return np.asarray(np.minimum(p, 1.0), dtype=np.float64)


def two_count_test(x: Any, y: Any) -> CountTest:
    """Return the exact two-sided test of counts x against y given x + y (scipy's binomtest p)."""
    xf, yf = np.broadcast_arrays(_checked(x, "x", whole=True), _checked(y, "y", whole=True))
    k, n = xf.astype(np.int64), (xf + yf).astype(np.int64)
    p = _binomtest_two_sided(k, n)
    sign = np.sign(k - yf.astype(np.int64))
    return CountTest(p, sign * norm.isf(p / 2.0), _ratio(xf, yf), sign)


def _binomtest_two_sided(k: IntArray, n: IntArray) -> FloatArray:
    """Return scipy.stats.binomtest(k, n, 0.5).pvalue, vectorised, by the same sums.

    Below the mode (k < n/2) the other tail is every j >= ceil(n/2) whose probability is at most
    pmf(k) · (1 + 1e-7), and p = cdf(k) + sf(first such j − 1); above it the other tail is every
    j <= floor(n/2) within that bound, and p = cdf(last such j) + sf(k − 1); k = n/2 gives 1.
    The pmf is monotone on each side of the mode, so the tail ends are found by bisection.
    """
    bound = binom.pmf(k, n, 0.5) * _BINOMTEST_RERR
    below = 2 * k < n
    # One bisection per element on its other side: below the mode, the first j of the upper half
    # with pmf(j) <= bound (pmf falls there); above it, the first j of the lower half with
    # pmf(j) > bound (pmf rises there), one past the last j of the tail.
    edge = _first_true(
        lambda j: (binom.pmf(j, n, 0.5) <= bound) == below,
        np.where(below, (n + 1) // 2, 0),
        np.where(below, n, n // 2),
    )
    # p = P(X <= end of the lower tail) + P(X >= start of the upper tail).
    lower_end = np.where(below, k, edge - 1)
    upper_start = np.where(below, edge, k)
    p = binom.cdf(lower_end, n, 0.5) + binom.sf(upper_start - 1, n, 0.5)
    return np.where(2 * k == n, 1.0, np.minimum(p, 1.0))


def _first_true(predicate: Callable[[IntArray], BoolArray], lo: IntArray, hi: IntArray) -> IntArray:
    """Return per element the first j in [lo, hi] where a false-then-true predicate holds (hi+1)."""
    lo, end = lo.copy(), hi + 1
    while (active := lo < end).any():
        mid = (lo + end) // 2
        holds = predicate(mid)
        end = np.where(active & holds, mid, end)
        lo = np.where(active & ~holds, mid + 1, lo)
    return lo


# ---------------------------------------------------------------------------------------------
# One report's comparisons


def change_tests(rows: Sequence[Comparison], alpha: float = ALPHA) -> list[Change]:
    """Test every comparison of one report and adjust all p-values together (Benjamini–Hochberg).

    "mean" rows use `baseline_z`, "count" rows `two_count_test`; a change is significant when
    its adjusted p-value is at most alpha. Returns one Change per row, in the order of rows.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    count = _checked([r.count for r in rows], "Comparison.count", whole=True)
    baseline = _checked([r.baseline for r in rows], "Comparison.baseline", whole=False)
    is_mean = np.array([r.kind == "mean" for r in rows], dtype=bool)
    z, p = np.zeros(len(rows)), np.ones(len(rows))
    if is_mean.any():
        z[is_mean], p[is_mean] = baseline_z(count[is_mean], baseline[is_mean])
    if (~is_mean).any():
        _checked(baseline[~is_mean], "Comparison.baseline of a 'count' row", whole=True)
        tested = two_count_test(count[~is_mean], baseline[~is_mean])
        z[~is_mean], p[~is_mean] = tested.z, tested.p
    p_adjusted = benjamini_hochberg(p)
    return [
        Change(
            count=int(count[i]),
            baseline=float(baseline[i]),
            kind=rows[i].kind,
            z=float(z[i]),
            p=float(p[i]),
            p_adjusted=float(p_adjusted[i]),
            direction=_direction(count[i], baseline[i]),
            significant=bool(p_adjusted[i] <= alpha),
        )
        for i in range(len(rows))
    ]


# ---------------------------------------------------------------------------------------------
# Helpers


def _checked(values: Any, name: str, whole: bool) -> FloatArray:
    """Return values as floats, rejecting NaN, infinities, negatives and (if whole) fractions."""
    try:
        a = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numbers, got {values!r}") from error
    if np.isnan(a).any():
        raise ValueError(f"{name} must not be NaN")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must be finite")
    if (a < 0).any():
        raise ValueError(f"{name} must not be negative, got {a.min()}")
    if whole and (a != np.floor(a)).any():
        raise ValueError(f"{name} must be whole numbers of incidents")
    return a


def _ratio(x: Any, y: Any) -> Any:
    """Return x / y with x / 0 = inf for x > 0 and 0 / 0 = NaN, without numpy warnings."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.true_divide(x, y)


def _direction(count: float, baseline: float) -> Direction:
    """Return "up", "down" or "same" for a count against its baseline."""
    if count == baseline:
        return "same"
    return "up" if count > baseline else "down"
