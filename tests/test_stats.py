"""petseg.stats: hand-computed values and SciPy on the same inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from petseg.stats import (
    chi_squared_test,
    linear_fit,
    mean_sd,
    median_iqr,
    paired_t_test,
    pairwise_tests,
    summarize,
    unpaired_t_test,
    wilcoxon_signed_rank,
)


def test_mean_sd_is_sample_sd():
    # 2, 4, 4, 4, 5, 5, 7, 9: mean 5, sum of squares 32, sample SD sqrt(32/7) (R's sd)
    mean, sd = mean_sd([2, 4, 4, 4, 5, 5, 7, 9, np.nan])
    assert mean == 5.0
    assert sd == pytest.approx(math.sqrt(32 / 7))
    assert math.isnan(mean_sd([1.0])[1])


def test_median_iqr_linear_percentiles():
    # 1..8: Q1 at position 0.25·7 = 1.75 -> 2.75, Q3 at 5.25 -> 6.25, IQR 3.5
    med, iqr = median_iqr([1, 2, 3, 4, 5, 6, 7, 8])
    assert (med, iqr) == (4.5, 3.5)
    s = summarize([1, 2, 3, 4, 5, 6, 7, 8, np.nan])
    assert (s["n"], s["q1"], s["q3"]) == (8, 2.75, 6.25)


def test_paired_t_test_by_hand_and_scipy():
    a = np.array([0.80, 0.75, 0.90, 0.60, 0.85])
    b = np.array([0.70, 0.70, 0.85, 0.62, 0.70])
    d = a - b  # 0.10, 0.05, 0.05, -0.02, 0.15
    t = d.mean() / (d.std(ddof=1) / math.sqrt(d.size))
    res = paired_t_test(a, b)
    assert res["statistic"] == pytest.approx(t)
    assert res["pvalue"] == pytest.approx(2 * sps.t.sf(abs(t), d.size - 1))
    assert res["pvalue"] == sps.ttest_rel(a, b).pvalue


def test_paired_tests_drop_nan_pairs():
    a = [0.8, np.nan, 0.9, 0.6, 0.85, 0.7]
    b = [0.7, 0.5, 0.85, 0.62, 0.7, 0.5]
    res = paired_t_test(a, b)
    assert res["n"] == 5
    assert (
        res["pvalue"]
        == sps.ttest_rel([0.8, 0.9, 0.6, 0.85, 0.7], [0.7, 0.85, 0.62, 0.7, 0.5]).pvalue
    )


def test_wilcoxon_exact_by_hand_and_scipy():
    # five positive differences with distinct ranks: W- = 0; the exact two-sided p is
    # 2·P(W ≤ 0) = 2/2^5 = 0.0625
    a = [1.1, 2.3, 3.6, 4.0, 5.9]
    b = [1.0, 2.1, 3.3, 3.6, 5.4]
    res = wilcoxon_signed_rank(a, b)
    assert res["statistic"] == 0.0
    assert res["pvalue"] == pytest.approx(0.0625)
    assert res["pvalue"] == sps.wilcoxon(a, b).pvalue


def test_wilcoxon_zero_differences_dropped():
    a = [0.5, 0.6, 0.7, 0.8, 0.9, 0.4, 0.3]
    b = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.1]  # one zero difference
    res = wilcoxon_signed_rank(a, b)
    assert (res["n"], res["n_nonzero"]) == (7, 6)
    assert res["pvalue"] == sps.wilcoxon(a, b, zero_method="wilcox").pvalue
    assert math.isnan(wilcoxon_signed_rank([1, 2], [1, 2])["pvalue"])


def test_unpaired_t_test_is_welch_by_default():
    a = [1.0, 2.0, 3.0, 4.0]
    b = [2.0, 4.0, 6.0, 8.0, 10.0]
    # Welch: t = (2.5 - 6) / sqrt(var_a/4 + var_b/5) = -3.5 / sqrt(1.6667/4 + 10/5)
    t = -3.5 / math.sqrt((5 / 3) / 4 + 10 / 5)
    res = unpaired_t_test(a, b)
    assert res["statistic"] == pytest.approx(t)
    assert res["pvalue"] == sps.ttest_ind(a, b, equal_var=False).pvalue
    assert unpaired_t_test(a, b, equal_var=True)["pvalue"] == sps.ttest_ind(a, b).pvalue


def test_chi_squared_with_yates_like_r():
    # R: chisq.test(matrix(c(29, 3, 75, 32), 2)) applies Yates' correction; by hand
    # N=139, expected cells from margins; statistic = Σ (|O-E| - 0.5)² / E
    table = np.array([[29, 75], [3, 32]])
    expected = np.outer(table.sum(1), table.sum(0)) / table.sum()
    stat = (((np.abs(table - expected) - 0.5) ** 2) / expected).sum()
    res = chi_squared_test(table)
    assert res["statistic"] == pytest.approx(stat)
    assert res["pvalue"] == pytest.approx(sps.chi2.sf(stat, 1))


def test_linear_fit_by_hand():
    # y = 2x + 1 exactly: slope 2, intercept 1, r 1
    fit = linear_fit([0, 1, 2, 3], [1, 3, 5, 7])
    assert fit["slope"] == pytest.approx(2) and fit["intercept"] == pytest.approx(1)
    assert fit["pearson_r"] == pytest.approx(1) and fit["r_squared"] == pytest.approx(1)
    # x = 1, 2, 3; y = 1, 3, 2: slope Sxy/Sxx = 1/2, intercept 2 - 0.5·2 = 1,
    # r = Sxy / sqrt(Sxx·Syy) = 1 / sqrt(2·2) = 0.5
    fit = linear_fit([1, 2, 3], [1, 3, 2])
    assert (fit["slope"], fit["intercept"]) == (pytest.approx(0.5), pytest.approx(1.0))
    assert fit["pearson_r"] == pytest.approx(0.5) and fit["r_squared"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="two distinct x"):
        linear_fit([1, 1], [1, 2])


def test_pairwise_tests_every_pair():
    rng = np.random.default_rng(0)
    samples = {m: rng.uniform(size=12) for m in ("ens", "f0", "f1")}
    rows = pairwise_tests(samples)
    assert [(r["a"], r["b"]) for r in rows] == [("ens", "f0"), ("ens", "f1"), ("f0", "f1")]
    r = rows[2]
    assert r["wilcoxon_pvalue"] == sps.wilcoxon(samples["f0"], samples["f1"]).pvalue
    assert r["t_pvalue"] == sps.ttest_rel(samples["f0"], samples["f1"]).pvalue
