"""Figures: what is drawn (data of the artists) and that each renders to PNG."""

from __future__ import annotations

import io

import numpy as np
import pytest

from petseg.reporting.figures import (
    agg_figure,
    dice_distribution_figure,
    slice_examples_figure,
    threshold_fit_figure,
)

PNG = b"\x89PNG\r\n\x1a\n"


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def test_agg_figure_size():
    fig = agg_figure(4.0, 2.0, dpi=50)
    assert tuple(fig.get_size_inches()) == (4.0, 2.0)
    assert _png(fig).startswith(PNG)


def test_dice_distribution_one_panel_per_metric_nan_left_out():
    values = {
        "Pixel Dice": {"a": [0.5, 0.7, np.nan], "b": [0.9, 0.8, 0.85]},
        "Lesion Dice": {"a": [1.0, 0.0, 0.5], "b": [0.2, 0.4, np.nan]},
    }
    fig = dice_distribution_figure(values)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["Pixel Dice", "Lesion Dice"]
    # the points overlaid on model a's box in the first panel: the two defined values
    points = [line for line in axes[0].lines if line.get_marker() == "o"]
    np.testing.assert_array_equal(points[0].get_ydata(), [0.5, 0.7])
    assert len(points[1].get_ydata()) == 3
    assert _png(fig).startswith(PNG)


def test_threshold_fit_line_and_identity():
    x = np.array([0.2, 0.4, 0.6])
    fit = {"slope": 0.5, "intercept": 0.1, "pearson_r": 0.9, "r_squared": 0.81}
    fig = threshold_fit_figure(x, x * 0.5 + 0.1, fit, title="fold 1", ylabel="method 2")
    ax = fig.axes[0]
    _scatter, line, identity = ax.lines
    np.testing.assert_allclose(line.get_xdata(), [0.2, 0.6])
    np.testing.assert_allclose(line.get_ydata(), [0.2, 0.4])  # 0.5 x + 0.1
    np.testing.assert_allclose(identity.get_ydata(), [0.2, 0.6])
    assert "r = 0.900, R² = 0.810" in line.get_label()
    assert (ax.get_title(), ax.get_ylabel()) == ("fold 1", "method 2")
    assert _png(fig).startswith(PNG)


def test_slice_examples_masks_and_titles():
    rng = np.random.default_rng(0)
    pet = rng.random((2, 8, 8))
    truth = pet > 0.5
    out = rng.random((2, 8, 8))
    thresholds = [np.array([0.3, 0.4]), np.array([0.5, 0.6]), np.array([0.7, 0.8])]
    dice = [np.array([0.81, 0.82]), np.array([0.91, 0.92]), np.array([0.71, 0.72])]
    fig = slice_examples_figure(pet, truth, out, thresholds, dice, ["P1 k=3", "P2 k=9"])
    axes = fig.axes
    assert len(axes) == 12
    assert axes[0].get_title() == "PET\nP1 k=3" and axes[6].get_title() == "P2 k=9"
    assert axes[4].get_title() == "method 2\nt=0.500 Dice 0.910"
    # method 2 thresholds the PET slice, method 3 the U-Net output
    np.testing.assert_array_equal(axes[4].images[0].get_array(), pet[0] > 0.5)
    np.testing.assert_array_equal(axes[11].images[0].get_array(), out[1] > 0.8)
    assert _png(fig).startswith(PNG)
    with pytest.raises(ValueError):
        slice_examples_figure(pet, truth, out, thresholds[:2], dice, ["P1", "P2"])
