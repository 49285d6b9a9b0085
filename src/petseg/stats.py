"""Cohort statistics as the two papers report them.

* Carlsen et al. 2022 (R 3.6.0): mean and standard deviation (sample SD, ``ddof=1``, as
  R's ``sd``), paired and unpaired t-tests, chi-squared test.
* Rainio et al. 2023 (SciPy 1.7.3): median and IQR ("the difference between the 75th
  and 25th percentiles"), Wilcoxon signed-rank test, least-squares line with Pearson's r
  and R² (Fig. 3).

All tests are SciPy's; this module fixes the conventions (NaN handling, defaults that
match R) and returns plain dicts and floats. NaN values mean "undefined for this case"
(see the empty policies in :mod:`petseg.metrics`): summaries drop them and report how
many values were used; paired tests drop every pair with a NaN on either side.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "chi_squared_test",
    "linear_fit",
    "mean_sd",
    "median_iqr",
    "paired_t_test",
    "pairwise_tests",
    "summarize",
    "unpaired_t_test",
    "wilcoxon_signed_rank",
]


def _finite(values: ArrayLike) -> NDArray[np.float64]:
    x = np.asarray(values, dtype=np.float64).ravel()
    return x[~np.isnan(x)]


def _paired(a: ArrayLike, b: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired samples must have the same length, got {x.size} and {y.size}")
    keep = ~(np.isnan(x) | np.isnan(y))
    return x[keep], y[keep]


def mean_sd(values: ArrayLike) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``, R's ``sd``) of the non-NaN values.

    SD is NaN with fewer than two values; both are NaN with none.

    Parameters
    ----------
    values : (n,) float ndarray
        Per-case values; NaN (undefined) values are left out.

    Returns
    -------
    mean, sd : float
    """
    x = _finite(values)
    if x.size == 0:
        return float("nan"), float("nan")
    sd = float(np.std(x, ddof=1)) if x.size > 1 else float("nan")
    return float(np.mean(x)), sd


def median_iqr(values: ArrayLike) -> tuple[float, float]:
    """Median and interquartile range Q3 − Q1 of the non-NaN values.

    Percentiles use NumPy's default linear interpolation (``method="linear"``, R's
    ``quantile`` type 7), so ``IQR = percentile(75) − percentile(25)``.

    Parameters
    ----------
    values : (n,) float ndarray
        Per-case values; NaN values (undefined for a case) do not count.

    Returns
    -------
    median, iqr : float
    """
    x = _finite(values)
    if x.size == 0:
        return float("nan"), float("nan")
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    return float(med), float(q3 - q1)


def summarize(values: ArrayLike) -> dict[str, float]:
    """Summary of one sample: count, mean (SD), median [IQR] and quartiles.

    Parameters
    ----------
    values : (n,) float ndarray
        One sample, e.g. a metric per case; NaN values are left out and not counted.

    Returns
    -------
    dict
        ``n`` (non-NaN values), ``mean``, ``sd``, ``median``, ``iqr``, ``q1``, ``q3``.
    """
    x = _finite(values)
    mean, sd = mean_sd(x)
    med, iqr = median_iqr(x)
    q1, q3 = np.percentile(x, [25, 75]).tolist() if x.size else [float("nan")] * 2
    return {
        "n": int(x.size),
        "mean": mean,
        "sd": sd,
        "median": med,
        "iqr": iqr,
        "q1": float(q1),
        "q3": float(q3),
    }


def paired_t_test(a: ArrayLike, b: ArrayLike) -> dict[str, float]:
    """Two-sided paired t-test (``scipy.stats.ttest_rel``, R ``t.test(paired=TRUE)``).

    Parameters
    ----------
    a, b : (n,) float ndarray
        Paired per-case values in the same case order; pairs with a NaN are dropped.

    Returns
    -------
    dict
        ``statistic``, ``pvalue``, ``n`` (pairs used) and ``mean_difference`` (a − b).
    """
    from scipy import stats

    x, y = _paired(a, b)
    if x.size < 2:
        return {
            "statistic": float("nan"),
            "pvalue": float("nan"),
            "n": int(x.size),
            "mean_difference": float(np.mean(x - y)) if x.size else float("nan"),
        }
    if np.all(x - y == (x - y)[0]):
        # Constant differences: the t statistic is undefined (SciPy would warn).
        return {
            "statistic": float("nan"),
            "pvalue": float("nan"),
            "n": int(x.size),
            "mean_difference": float((x - y)[0]),
        }
    res = stats.ttest_rel(x, y)
    return {
        "statistic": float(res.statistic),
        "pvalue": float(res.pvalue),
        "n": int(x.size),
        "mean_difference": float(np.mean(x - y)),
    }


def unpaired_t_test(a: ArrayLike, b: ArrayLike, *, equal_var: bool = False) -> dict[str, float]:
    """Two-sided unpaired t-test (``scipy.stats.ttest_ind``).

    ``equal_var=False`` (Welch's test) is the default because it is R's ``t.test``
    default, which Carlsen et al. used.

    Parameters
    ----------
    a, b : (n_a,), (n_b,) float ndarray
        The two groups; NaN values are dropped from each.
    equal_var : bool
        Student's test (pooled variance) instead of Welch's.

    Returns
    -------
    dict
        ``statistic``, ``pvalue``, ``n_a``, ``n_b``.
    """
    from scipy import stats

    x, y = _finite(a), _finite(b)
    if x.size < 2 or y.size < 2:
        return {
            "statistic": float("nan"),
            "pvalue": float("nan"),
            "n_a": int(x.size),
            "n_b": int(y.size),
        }
    res = stats.ttest_ind(x, y, equal_var=equal_var)
    return {
        "statistic": float(res.statistic),
        "pvalue": float(res.pvalue),
        "n_a": int(x.size),
        "n_b": int(y.size),
    }


def wilcoxon_signed_rank(
    a: ArrayLike,
    b: ArrayLike,
    *,
    zero_method: Literal["wilcox", "pratt", "zsplit"] = "wilcox",
) -> dict[str, float]:
    """Two-sided Wilcoxon signed-rank test of paired samples (``scipy.stats.wilcoxon``).

    Zero differences: ``zero_method="wilcox"`` (SciPy's and R's default) discards them
    before ranking. SciPy chooses the exact distribution for small samples without ties
    or zeros and the normal approximation otherwise (``method="auto"``). When every
    difference is zero the test is undefined and NaN is returned.

    Parameters
    ----------
    a, b : (n,) float ndarray
        Paired per-case values in the same case order; pairs with a NaN are dropped.
    zero_method : str
        ``"wilcox"``, ``"pratt"`` or ``"zsplit"`` (``scipy.stats.wilcoxon``).

    Returns
    -------
    dict
        ``statistic``, ``pvalue``, ``n`` (pairs used, zeros included) and ``n_nonzero``.
    """
    from scipy import stats

    x, y = _paired(a, b)
    d = x - y
    nonzero = int(np.count_nonzero(d))
    if nonzero == 0:
        return {"statistic": float("nan"), "pvalue": float("nan"), "n": int(x.size), "n_nonzero": 0}
    res = stats.wilcoxon(x, y, zero_method=zero_method)
    return {
        "statistic": float(res.statistic),
        "pvalue": float(res.pvalue),
        "n": int(x.size),
        "n_nonzero": nonzero,
    }


def chi_squared_test(table: ArrayLike, *, correction: bool = True) -> dict[str, Any]:
    """Chi-squared test of independence on a contingency table.

    ``scipy.stats.chi2_contingency``; for 2×2 tables Yates' continuity correction is
    applied by default, as in R's ``chisq.test``.

    Parameters
    ----------
    table : (r, c) int ndarray
        Observed counts, at least 2×2.
    correction : bool
        Yates' continuity correction for 2×2 tables.

    Returns
    -------
    dict
        ``statistic``, ``pvalue``, ``dof`` and ``expected`` (expected counts).
    """
    from scipy import stats

    tab = np.asarray(table, dtype=np.float64)
    if tab.ndim != 2 or min(tab.shape) < 2:
        raise ValueError(
            f"contingency table must be 2D with at least 2×2 cells, got shape {tab.shape}"
        )
    res = stats.chi2_contingency(tab, correction=correction)
    return {
        "statistic": float(res.statistic),
        "pvalue": float(res.pvalue),
        "dof": int(res.dof),
        "expected": np.asarray(res.expected_freq).tolist(),
    }


def linear_fit(x: ArrayLike, y: ArrayLike) -> dict[str, float]:
    """Least-squares line ``y = slope·x + intercept`` with Pearson's r and R² = r².

    As in Rainio Fig. 3 (predicted vs optimal thresholds).

    Parameters
    ----------
    x, y : (n,) float ndarray
        Paired values (at least two distinct x); pairs with a NaN are dropped.

    Returns
    -------
    dict
        ``slope``, ``intercept``, ``pearson_r``, ``r_squared``, ``pvalue`` (of the
        slope) and ``n`` (pairs used).
    """
    from scipy import stats

    a, b = _paired(x, y)
    if a.size < 2 or np.all(a == a[0]):
        raise ValueError(f"a line needs at least two distinct x values, got {a.size} points")
    res = stats.linregress(a, b)
    return {
        "slope": float(res.slope),
        "intercept": float(res.intercept),
        "pearson_r": float(res.rvalue),
        "r_squared": float(res.rvalue**2),
        "pvalue": float(res.pvalue),
        "n": int(a.size),
    }


def pairwise_tests(samples: Mapping[str, ArrayLike]) -> list[dict[str, Any]]:
    """Paired t-test and Wilcoxon signed-rank test between every pair of models.

    Parameters
    ----------
    samples : mapping of str to (n,) float ndarray
        Model name to its per-case values, all in the same case order.

    Returns
    -------
    list of dict
        One row per pair (in insertion order) with ``a``, ``b``, ``n``, ``mean_a``,
        ``mean_b``, ``median_a``, ``median_b``, ``t_statistic``, ``t_pvalue``,
        ``wilcoxon_statistic``, ``wilcoxon_pvalue``.
    """
    rows = []
    for (name_a, va), (name_b, vb) in combinations(samples.items(), 2):
        t = paired_t_test(va, vb)
        w = wilcoxon_signed_rank(va, vb)
        x, y = _paired(va, vb)
        rows.append(
            {
                "a": name_a,
                "b": name_b,
                "n": t["n"],
                "mean_a": float(np.mean(x)) if x.size else float("nan"),
                "mean_b": float(np.mean(y)) if y.size else float("nan"),
                "median_a": float(np.median(x)) if x.size else float("nan"),
                "median_b": float(np.median(y)) if y.size else float("nan"),
                "t_statistic": t["statistic"],
                "t_pvalue": t["pvalue"],
                "wilcoxon_statistic": w["statistic"],
                "wilcoxon_pvalue": w["pvalue"],
            }
        )
    return rows
