"""Evaluation figures (matplotlib, Agg backend, imported only when a figure is made).

Each function returns a ``matplotlib.figure.Figure``; the caller saves it (the evaluation
report writes them atomically next to its tables) and closes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["dice_distribution_figure", "threshold_fit_figure"]


def _figure(width: float, height: float) -> Figure:
    # Figure() with the Agg canvas needs no pyplot and no global backend switch.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def dice_distribution_figure(
    values: Mapping[str, Mapping[str, ArrayLike]], *, title: str = "Per-case Dice by model"
) -> Figure:
    """Box plots with the individual cases overlaid, one panel per metric.

    Parameters
    ----------
    values : ``{metric label: {model name: per-case values}}``; NaN values are left out
    """
    n = max(len(values), 1)
    fig = _figure(4.2 * n, 4.0)
    axes = fig.subplots(1, n, squeeze=False)[0]
    rng = np.random.default_rng(0)  # fixed jitter so the figure is reproducible
    for ax, (metric, per_model) in zip(axes, values.items(), strict=False):
        names = list(per_model)
        data = [np.asarray(per_model[m], dtype=float) for m in names]
        data = [d[~np.isnan(d)] for d in data]
        ax.boxplot(data, showfliers=False)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=20)
        for k, d in enumerate(data, start=1):
            ax.plot(k + rng.uniform(-0.15, 0.15, d.size), d, "o", ms=3, alpha=0.6, color="C0")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(metric)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def threshold_fit_figure(
    optimal: ArrayLike, predicted: ArrayLike, fit: dict[str, Any], *, title: str = ""
) -> Figure:
    """Predicted against optimal thresholds with the least-squares line (Rainio Fig. 3).

    Parameters
    ----------
    optimal, predicted : per-slice thresholds (x and y)
    fit : :func:`petseg.stats.linear_fit` of ``(optimal, predicted)``
    """
    x = np.asarray(optimal, dtype=float)
    y = np.asarray(predicted, dtype=float)
    fig = _figure(4.8, 4.5)
    ax = fig.subplots()
    ax.plot(x, y, "o", ms=3, alpha=0.6, label="slices")
    xs = np.array([np.nanmin(x), np.nanmax(x)])
    ax.plot(
        xs,
        fit["slope"] * xs + fit["intercept"],
        "-",
        color="C3",
        label=(
            f"y = {fit['slope']:.3g}x {fit['intercept']:+.3g}\n"
            f"r = {fit['pearson_r']:.3f}, R² = {fit['r_squared']:.3f}"
        ),
    )
    ax.set_xlabel("optimal threshold")
    ax.set_ylabel("predicted threshold")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
