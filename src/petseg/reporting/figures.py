"""Report figures (matplotlib on the Agg canvas, imported only when a figure is made).

Each function returns a ``matplotlib.figure.Figure`` built without pyplot and without
switching the global backend; the caller saves it (``fig.savefig(path)``) next to the
report's tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "agg_figure",
    "dice_distribution_figure",
    "slice_examples_figure",
    "threshold_fit_figure",
]


def agg_figure(width: float, height: float, *, dpi: int = 110) -> Figure:
    """An empty figure on its own Agg canvas (no pyplot, no global backend switch).

    Parameters
    ----------
    width, height : float
        Size in inches.
    dpi : int
        Pixels per inch of the saved picture.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def dice_distribution_figure(
    values: Mapping[str, Mapping[str, ArrayLike]], *, title: str = "Per-case Dice by model"
) -> Figure:
    """Box plots with the individual cases overlaid, one panel per metric.

    Parameters
    ----------
    values : mapping of str to mapping of str to (n_cases,) float ndarray
        ``{metric label: {model name: per-case values in [0, 1]}}``; NaN values are left
        out.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = max(len(values), 1)
    fig = agg_figure(4.2 * n, 4.0)
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
    optimal: ArrayLike,
    predicted: ArrayLike,
    fit: Mapping[str, Any],
    *,
    title: str = "",
    ylabel: str = "predicted threshold",
) -> Figure:
    """Predicted against optimal thresholds with the least-squares line (Rainio Fig. 3).

    Parameters
    ----------
    optimal, predicted : (n,) float ndarray
        Per-slice thresholds (x and y), in the units of the thresholded images.
    fit : mapping
        :func:`petseg.stats.linear_fit` of ``(optimal, predicted)``: ``slope``,
        ``intercept``, ``pearson_r``, ``r_squared``.
    title : str
        Axes title (empty: none).
    ylabel : str
        Label of the y axis.

    Returns
    -------
    matplotlib.figure.Figure
        The scatter, the least-squares line and the identity line over the range of the
        optimal thresholds, the line's statistics in the legend.
    """
    x = np.asarray(optimal, dtype=float)
    y = np.asarray(predicted, dtype=float)
    fig = agg_figure(4.8, 4.5)
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
    ax.plot(xs, xs, "k:", lw=0.8, label="identity")
    ax.set_xlabel("optimal threshold")
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


_EXAMPLE_TITLES = ("PET", "truth", "U-Net output", "method 1", "method 2", "method 3")


def slice_examples_figure(
    pet: NDArray[np.floating],
    truth: NDArray[np.bool_],
    unet_output: NDArray[np.floating],
    thresholds: Sequence[NDArray[np.floating]],
    dice: Sequence[NDArray[np.floating]],
    labels: Sequence[str],
) -> Figure:
    """Slices with their truth and the three methods' masks (Rainio Fig. 4), one row each.

    Method 1 and 3 threshold the U-Net output, method 2 the PET slice.

    Parameters
    ----------
    pet : (n, H, W) float ndarray
        PET slices scaled to [0, 1].
    truth : (n, H, W) bool ndarray
        Their ground truth.
    unet_output : (n, H, W) float ndarray
        The U-Net's continuous output in [0, 1].
    thresholds : sequence of three (n,) float ndarray
        The thresholds of methods 1, 2 and 3 per slice.
    dice : sequence of three (n,) float ndarray
        The Dice of methods 1, 2 and 3 per slice.
    labels : sequence of str
        One label per slice (patient and slice index), shown on the PET panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = len(labels)
    fig = agg_figure(12, 2.1 * n, dpi=90)
    axes = fig.subplots(n, 6, squeeze=False)
    thresholded = (unet_output, pet, unet_output)
    for r in range(n):
        panels = [pet[r], truth[r], unet_output[r]]
        notes = ["", "", ""]
        for image, thr, d in zip(thresholded, thresholds, dice, strict=True):
            panels.append(image[r] > thr[r])
            notes.append(f"t={thr[r]:.3f} Dice {d[r]:.3f}")
        for c, (img, note) in enumerate(zip(panels, notes, strict=True)):
            ax = axes[r, c]
            ax.imshow(img, cmap="gray_r" if c == 0 else "gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            text = "\n".join(s for s in (_EXAMPLE_TITLES[c] if r == 0 else "", note) if s)
            if c == 0:
                text = "\n".join(s for s in (text, labels[r]) if s)
            ax.set_title(text, fontsize=7)
    fig.tight_layout()
    return fig
