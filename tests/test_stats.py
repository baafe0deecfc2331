"""analysis.stats and analysis.survival: calibration on synthetic replicas with a known truth,
reference values against scipy and textbook examples, and the decision rules.

Everything is seeded, so the rates asserted here are fixed numbers (they are printed in
docs/statistics.md); the windows are the issue's (90-99% coverage of a 95% interval).
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy import stats as sps
from stats_synthetic import (
    block_mean_coverage,
    bootstrap_fraction,
    fraction_coverage,
    js_coverage,
    js_intervals,
    peak_coverage,
    rates,
    von_mises_density,
)

from analysis import stats, survival
from analysis.divergence import jensen_shannon

DENSITY_A = von_mises_density(36, 0.0, 2.0)
DENSITY_B = von_mises_density(36, 0.5, 3.0)
TRUTH_AB = jensen_shannon(DENSITY_A, DENSITY_B)


@pytest.fixture(scope="module")
def js_different() -> list[stats.Interval]:
    """200 experiments: 12 + 12 runs of 2000 samples from A and B (runs vary: Dirichlet)."""
    return js_intervals(DENSITY_A, DENSITY_B, 12, 2000, 200, seed=2, concentration=2000,
                        interval="basic")


@pytest.fixture(scope="module")
def js_same() -> list[stats.Interval]:
    """200 experiments: two groups of 12 runs of 500 samples, both from A (truth 0)."""
    return js_intervals(DENSITY_A, DENSITY_A, 12, 500, 200, seed=6, interval="basic")


# --- the API's small parts ---------------------------------------------------------------

def test_interval_text_and_dict() -> None:
    iv = stats.Interval(0.3612, 0.3101, 0.4234, 12, "runs")
    assert iv.text(unit="bits") == "0.361 [0.31, 0.423] bits"
    assert iv.text("{:.2f}") == "0.36 [0.31, 0.42]"
    d = stats.Interval(math.inf, 1.0, math.nan, 3, "log-log band").as_dict()
    assert d["value"] is None and d["ci_high"] is None and d["ci_low"] == 1.0


def test_a_verdict_value_above_its_interval_says_why() -> None:
    from analysis.sections import Verdict

    inside = Verdict("ramachandran", "m", 500.0, None, "", decision="inconclusive", value=0.156,
                     ci_low=0.0, ci_high=0.184, tolerance=0.15, unit="bits")
    assert inside.interval_text() == "0.156 [0, 0.184] bits, tolerance 0.15: inconclusive"
    above = Verdict("ramachandran", "m", 500.0, None, "", decision="inconclusive", value=0.174,
                    ci_low=0.0, ci_high=0.159, tolerance=0.15, unit="bits")
    assert above.interval_text().startswith("0.174 [0, 0.159] bits (above its interval: plug-in "
                                            "bias larger than the noise")
    assert above.interval_text().endswith(", tolerance 0.15: inconclusive")


def test_units_runs_or_time_blocks() -> None:
    runs = [np.arange(100.0) + 1000 * i for i in range(5)]
    got, method = stats.units(runs)
    assert method == "runs" and len(got) == 5
    got, method = stats.units(runs[:1])
    assert method == "time blocks" and len(got) == 8
    assert np.array_equal(np.concatenate(got), runs[0])  # contiguous, in order, nothing lost
    got, method = stats.units(runs[:3], n_blocks=8)
    assert method == "time blocks" and [len(b) for b in got] == [34, 33, 33] * 3
    two_d = [np.ones((10, 3)), np.ones((6, 3))]
    got, _ = stats.units(two_d)
    assert [len(b) for b in got] == [3, 3, 2, 2, 2, 2, 1, 1]
    assert all(b.shape[1:] == (3,) for b in got)
    short, _ = stats.units([np.arange(3)])  # fewer frames than blocks: one frame each
    assert [b.tolist() for b in short] == [[0], [1], [2]]
    scalars, method = stats.units([0.5, 0.7])  # one number per run: nothing to cut
    assert method == "runs" and [float(x) for x in scalars] == [0.5, 0.7]


@pytest.mark.parametrize(("low", "high", "tol", "expected"), [
    (0.05, 0.12, 0.15, "agrees"), (0.2, 0.4, 0.15, "differs"), (0.1, 0.4, 0.15, "inconclusive"),
    (-0.4, -0.2, 0.15, "differs"), (-0.1, 0.1, 0.15, "agrees"), (-0.2, 0.1, 0.15, "inconclusive"),
    (0.15, 0.15, 0.15, "agrees"), (math.nan, 0.1, 0.15, "inconclusive"),
    (0.1, 0.2, None, "no_reference"),
])
def test_decide(low: float, high: float, tol: float | None, expected: str) -> None:
    assert stats.decide(stats.Interval(0.5 * (low + high), low, high, 12, "runs"), tol) \
        == expected


def test_decide_without_interval() -> None:
    assert stats.decide(None, 0.1) == "no_reference"


# --- bootstrap mechanics -----------------------------------------------------------------

def _hist_groups(seed: int = 1, bins: tuple[int, ...] = (72, 72)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.poisson(5.0, (12, *bins)).astype(float), rng.poisson(5.5, (12, *bins))]


def test_bootstrap_seeded_and_fast_path_identical() -> None:
    a, b = _hist_groups(bins=(8, 8))

    def summed_js(ua: list, ub: list) -> float:
        return jensen_shannon(np.sum(ua, axis=0), np.sum(ub, axis=0))

    slow = stats.bootstrap([list(a), list(b)], summed_js, seed=3)
    fast = stats.bootstrap_histograms([a, b], jensen_shannon, seed=3)
    vec = stats.bootstrap_histograms([a, b], stats.jensen_shannon_rows, seed=3, vectorized=True)
    assert slow == fast
    assert vec.low == pytest.approx(fast.low, rel=1e-9)
    assert vec.high == pytest.approx(fast.high, rel=1e-9)
    assert slow.value == pytest.approx(jensen_shannon(a.sum(0), b.sum(0)))
    assert stats.bootstrap_histograms([a, b], jensen_shannon, seed=3) == fast
    other = stats.bootstrap_histograms([a, b], jensen_shannon, seed=4)
    assert (other.low, other.high) != (fast.low, fast.high)
    assert fast.n_units == 24 and fast.method == "runs"


def test_bootstrap_needs_units() -> None:
    with pytest.raises(ValueError, match="at least one unit"):
        stats.bootstrap([[1.0], []], lambda a, b: 0.0)


def test_jensen_shannon_rows_matches_scalar() -> None:
    rng = np.random.default_rng(0)
    p, q = rng.random((4, 30)), rng.random((4, 30))
    p[0, :10] = 0
    q[1, 20:] = 0
    got = stats.jensen_shannon_rows(p, q)
    assert got == pytest.approx([jensen_shannon(x, y) for x, y in zip(p, q, strict=True)],
                                abs=1e-12)


def test_thousand_resamples_of_ramachandran_histograms_well_under_a_second() -> None:
    """12 + 12 runs of 72x72 histograms, 1000 resamples, JS per resample (CPU time: the
    machine's other load does not count)."""
    a, b = _hist_groups()
    best = math.inf
    for _ in range(2):
        t0 = time.process_time()
        iv = stats.bootstrap_histograms([a, b], jensen_shannon, interval="basic")
        best = min(best, time.process_time() - t0)
    assert best < 0.8, f"{best:.2f} s CPU"
    assert iv.low < iv.value + 0.01


# --- calibration: 95% intervals cover the truth in 90-99% of >= 200 experiments ----------

def test_proportion_exact_coverage_wilson_vs_clopper_pearson() -> None:
    """Exact coverage averaged over true fractions: Wilson 95-96% for every n in 2..12."""
    grid = np.linspace(0.005, 0.995, 199)
    for n in range(2, 13):
        ks = np.arange(n + 1)
        ivs = [stats.proportion_interval(int(k), n) for k in ks]
        inside = np.array([(iv.low <= grid) & (grid <= iv.high) for iv in ivs])  # (k, p)
        cover = (sps.binom.pmf(ks[:, None], n, grid[None, :]) * inside).sum(axis=0)
        assert 0.95 <= cover.mean() <= 0.96, n


def test_proportion_interval_values() -> None:
    iv = stats.proportion_interval(10, 12)
    assert (iv.value, round(iv.low, 4), round(iv.high, 4)) == (10 / 12, 0.552, 0.953)
    assert stats.proportion_interval(12, 12).high == 1.0
    assert stats.proportion_interval(0, 5).low == 0.0
    assert math.isnan(stats.proportion_interval(0, 0).value)


@pytest.mark.parametrize("p", [0.5, 0.75, 0.9])
def test_survival_fraction_calibration(p: float) -> None:
    rate = fraction_coverage(p, 12, 400, seed=1)
    assert 0.90 <= rate <= 0.99, rate


def test_percentile_bootstrap_of_a_fraction_undercovers() -> None:
    """Why the fraction has its own interval: all 12 runs intact gives a zero-width interval."""
    assert fraction_coverage(0.9, 12, 400, seed=1, interval=bootstrap_fraction) < 0.85


def test_js_divergence_calibration(js_different: list[stats.Interval]) -> None:
    result = rates(js_different, TRUTH_AB)
    assert 0.90 <= result["coverage"] <= 0.99, result


def test_js_percentile_undercovers_when_bias_matters() -> None:
    """Few samples per run: the percentile interval sits on the upward bias of the plug-in."""
    basic = js_coverage(DENSITY_A, DENSITY_B, 12, 500, 200, seed=3, interval="basic")
    percentile = js_coverage(DENSITY_A, DENSITY_B, 12, 500, 200, seed=3, interval="percentile")
    assert 0.90 <= basic["coverage"] <= 0.99, basic
    assert percentile["coverage"] < 0.90, percentile


def test_peak_position_calibration() -> None:
    rate = peak_coverage(12, 200, seed=4)
    assert 0.90 <= rate <= 0.99, rate


def test_time_blocks_calibration() -> None:
    """Two correlated runs (correlation time ~10 frames) cut into 8 blocks: the mean's
    interval still covers."""
    rate, method = block_mean_coverage(2, 4000, 0.9, 200, seed=5)
    assert method == "time blocks"
    assert 0.90 <= rate <= 0.99, rate


# --- decisions on same and different groups ----------------------------------------------

@pytest.mark.parametrize("tolerance", [0.0005, 0.002, 0.01])
def test_same_distribution_rarely_differs(js_same: list[stats.Interval],
                                          tolerance: float) -> None:
    result = rates(js_same, 0.0, tolerance)
    assert result["differs"] <= 0.05, result


def test_tolerance_at_the_truth_differs_at_most_nominally(
        js_different: list[stats.Interval]) -> None:
    """The hardest case: the truth sits on the tolerance, so `differs` is a one-sided miss."""
    result = rates(js_different, TRUTH_AB, tolerance=TRUTH_AB)
    assert result["differs"] <= 0.05 and result["agrees"] <= 0.05, result


def test_clearly_different_groups_differ(js_different: list[stats.Interval]) -> None:
    assert rates(js_different, TRUTH_AB, tolerance=TRUTH_AB / 3)["differs"] == 1.0
    assert rates(js_different, TRUTH_AB, tolerance=3 * TRUTH_AB)["agrees"] == 1.0


def test_pairwise_flags_only_the_different_model() -> None:
    rng = np.random.default_rng(9)

    def group(density: np.ndarray) -> np.ndarray:
        return rng.multinomial(3000, density, size=12).astype(float)

    models = {"a": group(DENSITY_A), "a_again": group(DENSITY_A), "b": group(DENSITY_B)}
    pairs = stats.pairwise(models, jensen_shannon, histograms=True, n_resamples=400)
    flags = {(p.model_a, p.model_b): p.disagree for p in pairs}
    assert flags == {("a", "a_again"): False, ("a", "b"): True, ("a_again", "b"): True}
    ab = pairs[1]
    assert ab.distance.low > max(ab.noise_a.high, ab.noise_b.high)
    fast = stats.pairwise(models, stats.jensen_shannon_rows, histograms=True, n_resamples=400,
                          vectorized=True)
    assert fast[1].distance.low == pytest.approx(ab.distance.low, rel=1e-9)
    assert fast[1].noise_b.high == pytest.approx(ab.noise_b.high, rel=1e-9)
    assert ab.as_dict()["distance"]["ci_low"] == ab.distance.low
    generic = stats.pairwise({k: list(v[:6]) for k, v in models.items()},
                             lambda x, y: jensen_shannon(np.sum(x, 0), np.sum(y, 0)),
                             n_resamples=200)
    assert [p.disagree for p in generic] == [False, True, True]
    lone = stats.pairwise({"a": models["a"], "one": models["b"][:1]}, jensen_shannon,
                          histograms=True, n_resamples=100)
    assert lone[0].noise_b is None and lone[0].disagree is None


# --- exact intervals and survival --------------------------------------------------------

def test_poisson_rate_interval_against_table() -> None:
    """Garwood's exact limits (e.g. Ulm 1990's table): 0 -> [0, 3.689], 1 -> [0.0253, 5.572],
    5 -> [1.624, 11.668]; divided by the exposure."""
    for k, low, high in [(0, 0.0, 3.689), (1, 0.0253, 5.572), (5, 1.624, 11.668)]:
        iv = stats.poisson_rate_interval(k, 2.0)
        assert iv.value == k / 2.0 and iv.method == "exact"
        assert iv.low == pytest.approx(low / 2.0, abs=1e-3)
        assert iv.high == pytest.approx(high / 2.0, abs=1e-3)
    assert stats.poisson_rate_interval(3, 1.5).high \
        == pytest.approx(sps.chi2.ppf(0.975, 8) / 2 / 1.5)
    with pytest.raises(ValueError, match="exposure"):
        stats.poisson_rate_interval(1, 0.0)


def test_kaplan_meier_by_hand() -> None:
    """5 runs: failures at 2, 3, 5 ps; censored at 3 (same time as a failure) and 8 ps."""
    km = survival.kaplan_meier([2, 3, 3, 5, 8], [True, True, False, True, False])
    assert km.time_ps.tolist() == [0, 2, 3, 5]
    assert km.survival == pytest.approx([1, 0.8, 0.6, 0.3])
    assert km.at_risk.tolist() == [5, 5, 4, 2] and km.end_ps == 8.0
    # Greenwood at 3 ps: 1/(5*4) + 1/(4*3); log(-log) band S ** exp(-+1.96 se)
    gw = 1 / 20 + 1 / 12
    se = math.sqrt(gw) / abs(math.log(0.6))
    z = sps.norm.ppf(0.975)
    assert km.low[2] == pytest.approx(0.6 ** math.exp(z * se))
    assert km.high[2] == pytest.approx(0.6 ** math.exp(-z * se))
    assert km.at(4.0) == pytest.approx(0.6) and math.isnan(km.at(9.0))
    med = km.median()
    assert med.value == 5.0 and med.method == "log-log band"


def test_kaplan_meier_and_log_rank_against_scipy_and_textbook() -> None:
    """Gehan's leukaemia remission data (6-MP vs placebo, weeks): log-rank chi2 = 16.79."""
    mp_t = [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35]
    mp_f = [1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
    placebo = [1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23]
    km = survival.kaplan_meier(mp_t, [bool(f) for f in mp_f])
    data = sps.CensoredData(uncensored=[t for t, f in zip(mp_t, mp_f, strict=True) if f],
                            right=[t for t, f in zip(mp_t, mp_f, strict=True) if not f])
    ref = sps.ecdf(data).sf
    band = ref.confidence_interval(0.95, method="log-log")
    for t in (6, 10, 16, 23):
        assert km.at(t) == pytest.approx(ref.evaluate(t))
        i = np.searchsorted(km.time_ps, t, side="right") - 1
        assert km.low[i] == pytest.approx(band.low.evaluate(t))
        assert km.high[i] == pytest.approx(band.high.evaluate(t))
    med = km.median()
    assert (med.value, med.low, med.high) == (23.0, 13.0, math.inf)  # R survfit: 23, 13, NA
    test = survival.log_rank(mp_t, [bool(f) for f in mp_f], placebo, [True] * 21)
    assert test.statistic == pytest.approx(16.793, abs=1e-3)
    scipy_p = sps.logrank(data, sps.CensoredData(uncensored=placebo)).pvalue
    assert test.p_value == pytest.approx(scipy_p, rel=1e-6)
    assert test.sooner == "b"
    assert test.text("6-MP", "placebo") == "placebo fails sooner than 6-MP, p = 4.2e-05"


def test_log_rank_without_failures() -> None:
    test = survival.log_rank([10, 10], [False, False], [10], [False])
    assert test.p_value == 1.0 and test.sooner is None


def test_failure_rate_per_ns() -> None:
    # 4 runs: two fail at 100 and 300 ps, two complete 500 ps: exposure 1.4 ns, 2 failures
    iv = survival.failure_rate([100, 300, 500, 500], [True, True, False, False])
    assert iv.value == pytest.approx(2 / 1.4)
    assert iv.high == pytest.approx(sps.chi2.ppf(0.975, 6) / 2 / 1.4)
    assert iv.low == pytest.approx(sps.chi2.ppf(0.025, 4) / 2 / 1.4)


def test_survival_inputs_from_records() -> None:
    class Rec:
        def __init__(self, reached_ps: float, status: str) -> None:
            self.reached_ps, self.status = reached_ps, status

    times, failed = survival.from_records([Rec(5.0, "failed"), Rec(10.0, "completed"),
                                           Rec(7.5, "interrupted")])
    assert times.tolist() == [5.0, 10.0, 7.5] and failed.tolist() == [True, False, False]


def test_plot_survival_draws_steps_and_bands() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {"a": survival.kaplan_meier([2, 3, 3, 5, 8], [True, True, False, True, False]),
              "b": survival.kaplan_meier([4, 9, 9], [True, False, False])}
    fig, ax = plt.subplots()
    assert survival.plot_survival(ax, curves) is ax
    assert len(ax.lines) == 2 and len(ax.collections) == 2
    x, y = ax.lines[0].get_data()
    assert list(x) == [0, 2, 3, 5, 8] and list(y) == pytest.approx([1, 0.8, 0.6, 0.3, 0.3])
    assert "a (5 runs)" in [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(fig)


def test_several_statistics_of_the_same_resamples_equal_each_alone():
    """``bootstrap_histograms_columns``: one pass, each column's interval what
    ``bootstrap_histograms`` gives for that statistic alone (same seed, same draws)."""
    from analysis import stats

    rng = np.random.default_rng(4)
    a, b = rng.random((7, 30)), rng.random((5, 30))

    def columns(x, y):
        return np.column_stack([stats.jensen_shannon_rows(x, y),
                                stats.jensen_shannon_rows(x[:, :10], y[:, :10])])

    both = stats.bootstrap_histograms_columns([a, b], columns, n_resamples=300, seed=3)
    for j, found in enumerate(both):
        alone = stats.bootstrap_histograms([a, b], lambda x, y, j=j: columns(x, y)[:, j],
                                           n_resamples=300, seed=3, vectorized=True,
                                           interval="basic")
        assert (found.value, found.low, found.high) == pytest.approx(
            (alone.value, alone.low, alone.high), abs=1e-12)
    assert both[0].low < both[0].high and both[1].value != both[0].value


def _ar1(rng: np.random.Generator, m: int, n: int, phi: float) -> np.ndarray:
    """m AR(1) chains of n draws, stationary N(0, 1), lag-1 correlation phi."""
    from scipy.signal import lfilter

    noise = rng.normal(size=(m, n)) * np.sqrt(1 - phi * phi)
    start = rng.normal(size=m)  # x_0 from the stationary distribution
    return lfilter([1.0], [1.0, -phi], noise, axis=1, zi=(phi * start)[:, None])[0]


def test_split_rhat_is_calibrated_on_chains_with_a_known_answer() -> None:
    """Six AR(1) chains (phi 0.9, integrated time ~19 draws) of 2000 draws: from one
    distribution, none of 200 sets is flagged (measured: largest 1.03); with one chain shifted
    by 1.5 standard deviations, every set is (measured: smallest 1.11, median 1.17); chains
    only ~10 correlation times long are flagged often even from one distribution (phi 0.99:
    45% of sets), as they should be: they have not explored it yet."""
    rng = np.random.default_rng(20261208)
    same = [stats.split_rhat(_ar1(rng, 6, 2000, 0.9)) for _ in range(200)]
    assert max(same) < stats.RHAT_FLAG, max(same)
    shifted = []
    for _ in range(200):
        chains = _ar1(rng, 6, 2000, 0.9)
        chains[0] += 1.5
        shifted.append(stats.split_rhat(chains))
    assert min(shifted) > stats.RHAT_FLAG, min(shifted)
    short = [stats.split_rhat(_ar1(rng, 6, 2000, 0.99)) for _ in range(100)]
    assert 0.2 < np.mean(np.array(short) > stats.RHAT_FLAG) < 0.8


def test_split_rhat_edge_cases() -> None:
    assert stats.split_rhat(np.zeros((6, 100))) == 1.0  # nothing varies: no information
    stuck = np.zeros((4, 100))
    stuck[1::2] = 1.0  # each chain constant, two in each state
    assert stats.split_rhat(stuck) == np.inf
    assert np.isnan(stats.split_rhat(np.zeros((3, 3))))
    # a chain that changes state half-way: its halves differ, flagged although the pooled
    # share is one half
    drift = np.repeat([[0.0] * 50 + [1.0] * 50], 4, axis=0)
    assert stats.split_rhat(drift) > stats.RHAT_FLAG
