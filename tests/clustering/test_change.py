"""Weekly change tests: the Poisson test by brute force, the count test by binomtest, then BH."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from scipy.stats import binomtest, false_discovery_control, norm, poisson

from clustering.change import (
    ALPHA,
    EXACT_BELOW_MEAN,
    Change,
    Comparison,
    baseline_z,
    change_tests,
    two_count_test,
)

FloatArray = npt.NDArray[np.float64]

# Benjamini & Hochberg (1995), section 4: 15 p-values; at q = 0.05 the first four are rejected.
BH_1995_P = [
    0.0001,
    0.0004,
    0.0019,
    0.0095,
    0.0201,
    0.0278,
    0.0298,
    0.0344,
    0.0459,
    0.3240,
    0.4262,
    0.5719,
    0.6528,
    0.7590,
    1.0000,
]
# Weekly means of eight category groups: large ones, and small ones where the normal tails fail.
GROUP_MEANS = np.array([10.0, 14.0, 20.0, 30.0, 45.0, 70.0, 110.0, 200.0])
SMALL_GROUP_MEANS = np.array([1.0, 1.5, 2.0, 3.0, 5.0, 9.5, 20.0, 40.0])
# Means of the brute-force grid; 3.00000015 puts pmf(3) within the tie tolerance above pmf(2).
GRID_MEANS = (0.5, 1.0, 2.0, 3.0, 3.00000015, 9.5, 40.0, 200.0)


def reference_bh(p: list[float]) -> FloatArray:
    """Adjusted p-values straight from the definition: min over j >= rank of m · p_(j) / j."""
    m = len(p)
    ranked = sorted(p)
    adjusted = []
    for value in p:
        rank = ranked.index(value) + 1  # ties share the first rank, and so one adjusted value
        adjusted.append(min(1.0, min(m * ranked[j - 1] / j for j in range(rank, m + 1))))
    return np.array(adjusted)


def reference_bh_rejections(p: list[float], q: float) -> list[bool]:
    """The step-up rule: reject p_(1..k) for the largest k with p_(k) <= k q / m."""
    m = len(p)
    ranked = sorted(p)
    k = max((j for j in range(1, m + 1) if ranked[j - 1] <= j * q / m), default=0)
    cutoff = ranked[k - 1] if k else -1.0
    return [value <= cutoff for value in p]


def brute_force_poisson_p(x: int, mean: float) -> float:
    """The exact two-sided Poisson p by its definition: Σ pmf(k) over k with pmf(k) <= pmf(x)."""
    k = np.arange(0, int(4 * max(x, mean)) + 200)  # the tail left out is negligible against p
    pmf = poisson.pmf(k, mean)
    return min(1.0, float(pmf[pmf <= poisson.pmf(x, mean) * (1 + 1e-7)].sum()))


def one_report(rng: np.random.Generator, means: FloatArray) -> list[Comparison]:
    """A week in which nothing changed: 8 groups against their mean, last week, last year."""
    this_week = rng.poisson(means)
    last_week = rng.poisson(means)
    last_year = rng.poisson(means)
    return [
        row
        for g, mean in enumerate(means)
        for row in (
            Comparison(int(this_week[g]), float(mean), "mean"),
            Comparison(int(this_week[g]), float(last_week[g]), "count"),
            Comparison(int(this_week[g]), float(last_year[g]), "count"),
        )
    ]


# ---------------------------------------------------------------------------------------------
# baseline_z


@pytest.mark.parametrize(
    ("count", "mean", "z"),
    [(16, 9.0, 2.0), (9, 16.0, -2.0), (25, 25.0, 0.0), (0, 4.0, -4.0), (100, 81.0, 2.0)],
)
def test_baseline_z_matches_hand_computed_scores(count: int, mean: float, z: float) -> None:
    result = baseline_z(count, mean)
    assert float(result.z) == pytest.approx(z, abs=1e-12)
    assert float(result.p) == pytest.approx(brute_force_poisson_p(count, mean), rel=1e-10)


def test_baseline_z_p_is_the_exact_poisson_test() -> None:
    # P(X >= 16) + P(X <= 2) for X ~ Poisson(9): pmf(2) <= pmf(16) < pmf(3).
    expected = poisson.sf(15, 9.0) + poisson.cdf(2, 9.0)
    assert poisson.pmf(2, 9.0) <= poisson.pmf(16, 9.0) < poisson.pmf(3, 9.0)
    assert float(baseline_z(16, 9.0).p) == pytest.approx(expected, rel=1e-12)
    assert float(baseline_z(16, 9.0).p) < 2 * norm.sf(2.0)


def test_baseline_z_p_matches_brute_force_on_a_grid() -> None:
    pairs = [(x, m) for m in GRID_MEANS for x in range(0, int(2.5 * m) + 20)]
    pairs += [(x, m) for m in GRID_MEANS for x in (500, 1000)]
    x, m = (np.array(side) for side in zip(*pairs, strict=True))
    result = baseline_z(x, m)  # one vectorised call over all means
    np.testing.assert_allclose(result.z, 2 * (np.sqrt(x) - np.sqrt(m)), rtol=1e-12)
    expected = [brute_force_poisson_p(int(a), float(b)) for a, b in pairs]
    np.testing.assert_allclose(result.p, expected, rtol=1e-10, atol=1e-300)
    assert (result.p <= 1.0).all()


def test_baseline_z_counts_ties_within_the_tolerance_on_both_sides() -> None:
    # pmf(2) = pmf(3) at m = 3 exactly and within 1e-7 at m = 3(1 + 5e-8): both tie with the mode.
    for mean in (3.0, 3.00000015):
        assert float(baseline_z(2, mean).p) == 1.0
    # At m = 1 the observed 0 ties with the mode 1: no count is less likely than both.
    assert float(baseline_z(0, 1.0).p) == 1.0


def test_baseline_z_of_zero_against_zero_is_no_change() -> None:
    result = baseline_z(0, 0.0)
    assert float(result.z) == 0.0
    assert float(result.p) == 1.0


def test_baseline_z_of_incidents_against_a_zero_mean_is_a_certain_change() -> None:
    result = baseline_z([1, 4, 30], 0.0)
    np.testing.assert_allclose(result.z, [2.0, 4.0, 2 * math.sqrt(30)])
    np.testing.assert_array_equal(result.p, [0.0, 0.0, 0.0])


def test_baseline_z_is_vectorised_and_broadcasts() -> None:
    counts = np.array([[0, 1, 4], [9, 16, 25]])
    result = baseline_z(counts, 4.0)
    assert result.z.shape == result.p.shape == (2, 3)
    np.testing.assert_allclose(result.z, 2 * (np.sqrt(counts) - 2.0))
    expected = [[brute_force_poisson_p(int(c), 4.0) for c in row] for row in counts]
    np.testing.assert_allclose(result.p, expected, rtol=1e-10)
    means = baseline_z(9, np.array([1.0, 9.0, 40.0]))
    assert means.p.shape == (3,)
    assert float(means.p[1]) == 1.0


def test_baseline_z_uses_the_normal_p_only_for_huge_means() -> None:
    big = 4 * EXACT_BELOW_MEAN
    count = round(big + 2 * math.sqrt(big))  # z ≈ 2
    result = baseline_z(count, big)
    assert float(result.p) == pytest.approx(2 * norm.sf(abs(float(result.z))), rel=1e-12)
    # Just below the switch the exact p agrees with the normal one to a fraction of a percent.
    below, at = EXACT_BELOW_MEAN - 1, EXACT_BELOW_MEAN
    for shift in (-2000, 2000):
        p_exact, p_normal = baseline_z([int(at) + shift] * 2, [below, at]).p
        assert p_exact != 2 * norm.sf(abs(float(baseline_z(int(at) + shift, below).z)))
        assert p_exact == pytest.approx(p_normal, rel=0.01)


@pytest.mark.parametrize("mean", [1.0, 2.0, 3.0, 9.5, 30.0, 100.0])
def test_baseline_z_false_alarm_rate_is_at_most_alpha(mean: float) -> None:
    """The exact test never flags more than alpha of quiet weeks, also for small means."""
    x = np.arange(0, 1000)
    flagged = baseline_z(x, mean).p <= ALPHA
    rate = float(poisson.pmf(x, mean)[flagged].sum())
    assert rate <= ALPHA
    # The normal p would flag x = 0 at m = 1 (p = 0.046), a week that happens 37 % of the time.
    assert not flagged[0] or mean > 3


# ---------------------------------------------------------------------------------------------
# two_count_test


def test_two_count_test_matches_scipy_binomtest() -> None:
    small = range(0, 25)
    pairs = [(x, y) for x in small for y in small]
    pairs += [(400, 350), (350, 400), (375, 375), (375, 376), (1000, 900), (60, 0), (0, 60)]
    x, y = (np.array(side) for side in zip(*pairs, strict=True))
    expected = [binomtest(a, a + b, 0.5).pvalue if a + b else 1.0 for a, b in pairs]
    np.testing.assert_array_equal(two_count_test(x, y).p, expected)


def test_two_count_test_of_no_incidents_is_no_change() -> None:
    result = two_count_test(0, 0)
    assert float(result.p) == 1.0
    assert float(result.z) == 0.0
    assert int(result.sign) == 0
    assert math.isnan(float(result.ratio))


def test_two_count_test_reports_ratio_and_sign() -> None:
    result = two_count_test([6, 3, 0, 5, 0], [3, 6, 3, 0, 0])
    np.testing.assert_array_equal(result.ratio, [2.0, 0.5, 0.0, np.inf, np.nan])
    np.testing.assert_array_equal(result.sign, [1, -1, -1, 1, 0])


def test_two_count_z_is_the_signed_normal_quantile_of_p() -> None:
    result = two_count_test([30, 10, 12], [10, 30, 12])
    np.testing.assert_allclose(result.z, result.sign * norm.isf(result.p / 2), rtol=1e-12)
    assert result.z[0] > 0 > result.z[1]
    assert result.z[0] == pytest.approx(-result.z[1], rel=1e-12)
    assert result.z[2] == 0.0


# ---------------------------------------------------------------------------------------------
# change_tests


def test_reference_bh_reproduces_the_1995_example() -> None:
    assert reference_bh_rejections(BH_1995_P, 0.05) == [True] * 4 + [False] * 11
    adjusted = reference_bh(BH_1995_P)
    assert list(adjusted <= 0.05) == reference_bh_rejections(BH_1995_P, 0.05)
    np.testing.assert_allclose(adjusted, false_discovery_control(BH_1995_P), rtol=1e-12)


def test_change_tests_adjusts_with_benjamini_hochberg() -> None:
    counts = [30, 12, 45, 20, 9, 60, 16, 25]
    rows = [Comparison(c, 20.0, "mean") for c in counts]
    shifts = range(-8, 8, 2)
    rows += [Comparison(c, float(c + d), "count") for c, d in zip(counts, shifts, strict=True)]
    changes = change_tests(rows)
    p = [change.p for change in changes]
    adjusted = [change.p_adjusted for change in changes]
    np.testing.assert_allclose(adjusted, reference_bh(p), rtol=1e-12)
    assert [change.significant for change in changes] == reference_bh_rejections(p, ALPHA)
    assert any(change.significant for change in changes)
    assert not all(change.significant for change in changes)


def test_change_tests_run_the_test_of_each_kind_in_input_order() -> None:
    rows = [Comparison(16, 9.0, "mean"), Comparison(40, 25.0, "count"), Comparison(5, 5.0, "mean")]
    mean, count, same = change_tests(rows)
    assert (mean.kind, mean.count, mean.baseline) == ("mean", 16, 9.0)
    assert mean.z == pytest.approx(2.0)
    assert mean.p == pytest.approx(float(baseline_z(16, 9.0).p))
    assert count.kind == "count"
    assert count.p == binomtest(40, 65, 0.5).pvalue
    assert count.z == pytest.approx(norm.isf(count.p / 2))
    assert (mean.direction, count.direction, same.direction) == ("up", "up", "same")
    assert (same.z, same.p) == (0.0, 1.0)
    assert count.ratio == pytest.approx(1.6)


def test_change_tests_flags_a_real_jump_and_its_direction() -> None:
    rows = [Comparison(90, 40.0, "mean"), Comparison(90, 38, "count"), Comparison(8, 40.0, "mean")]
    up, up_count, down = change_tests(rows)
    assert up.significant and up_count.significant and down.significant
    assert (up.direction, up_count.direction, down.direction) == ("up", "up", "down")
    assert down.z < 0 < up.z


def test_significance_follows_alpha() -> None:
    rows = [Comparison(29, 20.0, "mean")]  # z = 2(√29 − √20) ≈ 1.83, exact p ≈ 0.056
    (change,) = change_tests(rows)
    assert not change.significant
    (loose,) = change_tests(rows, alpha=0.1)
    assert loose.significant
    assert loose.p_adjusted == change.p_adjusted == change.p  # one test: nothing to adjust


def test_change_tests_of_no_rows_is_empty() -> None:
    assert change_tests([]) == []


@pytest.mark.parametrize("means", [GROUP_MEANS, SMALL_GROUP_MEANS], ids=["10-200", "1-40"])
def test_change_tests_does_not_cry_wolf(means: FloatArray) -> None:
    """In weeks where nothing changed, a 24-test report flags something in about 5 % of weeks."""
    rng = np.random.default_rng(2024)
    reports = 1000
    any_corrected = any_raw = 0
    for _ in range(reports):
        changes = change_tests(one_report(rng, means))
        any_corrected += any(change.significant for change in changes)
        any_raw += any(change.p <= ALPHA for change in changes)
    assert any_corrected / reports <= 0.06
    assert any_raw / reports > 0.3  # uncorrected, many quiet weeks would report a change


def test_describe_says_direction_verdict_and_adjusted_p() -> None:
    change = Change(30, 20.0, "mean", 2.9, 0.0012, 0.0031, "up", True)
    assert change.describe() == "up, significant (p_adj 0.0031)"
    quiet = Change(18, 20.0, "count", -0.2, 0.8, 0.95, "down", False)
    assert quiet.describe() == "down, not significant (p_adj 0.95)"


# ---------------------------------------------------------------------------------------------
# Invalid input


@pytest.mark.parametrize(
    ("count", "mean", "message"),
    [
        (-1, 4.0, "count must not be negative"),
        (np.nan, 4.0, "count must not be NaN"),
        (2.5, 4.0, "count must be whole"),
        (3, -0.5, "baseline_mean must not be negative"),
        (3, np.nan, "baseline_mean must not be NaN"),
        (3, np.inf, "baseline_mean must be finite"),
    ],
)
def test_baseline_z_rejects_invalid_input(count: float, mean: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        baseline_z(count, mean)


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (-2, 3, "x must not be negative"),
        (3, -2, "y must not be negative"),
        (np.nan, 3, "x must not be NaN"),
        (3, 1.5, "y must be whole"),
        ("many", 3, "x must be numbers"),
    ],
)
def test_two_count_test_rejects_invalid_input(x: object, y: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        two_count_test(x, y)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (Comparison(-1, 4.0, "mean"), "Comparison.count must not be negative"),
        (Comparison(3, -4.0, "mean"), "Comparison.baseline must not be negative"),
        (Comparison(3, math.nan, "count"), "Comparison.baseline must not be NaN"),
        (Comparison(3, 2.5, "count"), "baseline of a 'count' row must be whole"),
    ],
)
def test_change_tests_rejects_invalid_rows(row: Comparison, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        change_tests([row])


def test_comparison_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind must be 'mean' or 'count'"):
        Comparison(3, 4.0, "median")  # type: ignore[arg-type]


def test_change_tests_rejects_alpha_outside_unit_interval() -> None:
    with pytest.raises(ValueError, match="alpha must lie in"):
        change_tests([Comparison(3, 4.0, "mean")], alpha=0.0)
