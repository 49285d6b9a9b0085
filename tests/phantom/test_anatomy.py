"""The reference adult: body mapping by hand, layer order, reproducible jitter."""

from __future__ import annotations

import numpy as np
import pytest

from petseg.phantom.anatomy import LABEL, ORGANS, Body, anatomy_layers
from petseg.phantom.config import DEFAULT_HU, DEFAULT_UPTAKE

SUV = {name: (lo + hi) / 2 for name, (lo, hi) in DEFAULT_UPTAKE.items()}


def _layers(seed: int, arms: str = "up"):
    body = Body(z_vertex=0.0, height=1.0, girth=1.0)
    rng = np.random.default_rng(seed)
    return anatomy_layers(
        rng, body, SUV, DEFAULT_HU, arms=arms, fat_mm=20.0, bladder_axes=(40.0, 30.0, 30.0)
    )


def test_body_maps_reference_positions():
    body = Body(z_vertex=100.0, height=1.1, girth=1.2)
    assert body.inner == pytest.approx(1.08)  # 0.6 + 0.4 · 1.2: extra girth is mostly fat
    assert body.p(10, 20, 30) == pytest.approx((10.8, 21.6, 67.0))  # z = 100 − 30 · 1.1
    assert body.p(10, 20, 30, outline=True) == pytest.approx((12.0, 24.0, 67.0))


def test_layers_in_painting_order_with_their_organ_values():
    layers = _layers(0)
    assert layers[0].name == "fat" and layers[1].name == "soft_tissue"
    assert layers[-1].name == "thyroid"
    assert {layer.name for layer in layers} == set(ORGANS.values()) - {"background"}
    for layer in layers:
        assert layer.label == LABEL[layer.name]
        assert (layer.suv, layer.hu) == (SUV[layer.name], DEFAULT_HU[layer.name])


def test_same_generator_state_same_layers_and_arms_change_the_outline():
    a, b = _layers(5), _layers(5)
    assert [layer.shapes[0].lo.tolist() for layer in a] == [
        layer.shapes[0].lo.tolist() for layer in b
    ]
    down = _layers(5, arms="down")
    assert a[0].shapes[-1].lo.tolist() != down[0].shapes[-1].lo.tolist()  # the arm tubes
    with pytest.raises(ValueError, match="arms must be 'up' or 'down'"):
        _layers(5, arms="sideways")
