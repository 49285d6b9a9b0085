"""Tables 2 and 3 of Rainio et al. 2023: parameter counts and layer output shapes.

Keras shapes ``H × W × C`` in the tables are ``(C, H, W)`` in PyTorch (batch axis dropped).
"""

import pytest
import torch

from petseg.slices.models import ThresholdCNN, UNet2D, count_parameters

# Table 2, rows with parameters, in order (Conv2D / Conv2DTranspose). The row of the
# Conv2D after the first Concatenate (64 → 32 channels) reads 18,496 in the paper, but
# 3·3·64·32 + 32 = 18,464; with it the rows add up to the caption's total 116,753
# (with 18,496 they would add up to 116,785).
TABLE2_PARAMS = [160, 2320, 4640, 9248, 18496, 36928, 8224, 18464, 9248, 2064, 4624, 2320, 17]
TABLE2_SHAPES = [  # (C, H, W) of the same rows
    (16, 64, 64), (16, 64, 64), (32, 32, 32), (32, 32, 32), (64, 16, 16), (64, 16, 16),
    (32, 32, 32), (32, 32, 32), (32, 32, 32), (16, 64, 64), (16, 64, 64), (16, 64, 64),
    (1, 64, 64),
]  # fmt: skip
# Table 3: Conv2D ×6, Dense ×3 (Dense 64 = 1024·64 + 64 = 65,600; the table's 656,000 is a typo).
TABLE3_PARAMS = [160, 2320, 4640, 9248, 18496, 36928, 65600, 2080, 33]
TABLE3_SHAPES = [
    (16, 62, 62), (16, 60, 60), (32, 28, 28), (32, 26, 26), (64, 11, 11), (64, 9, 9),
    (64,), (32,), (1,),
]  # fmt: skip
TABLE3_POOL_SHAPES = [(16, 30, 30), (32, 13, 13), (64, 4, 4)]


def _trace(model, layer_types):
    shapes, params = [], []
    hooks = [
        m.register_forward_hook(lambda mod, i, o: shapes.append(tuple(o.shape[1:])))
        for m in model.modules()
        if isinstance(m, layer_types)
    ]
    for m in model.modules():
        if isinstance(m, layer_types):
            params.append(sum(p.numel() for p in m.parameters()))
    with torch.no_grad():
        model.eval()(torch.zeros(2, 1, 64, 64))
    for h in hooks:
        h.remove()
    return shapes, params


def test_unet_matches_table2():
    model = UNet2D()
    assert count_parameters(model) == 116_753  # Table 2 caption
    assert sum(TABLE2_PARAMS) == 116_753
    shapes, params = _trace(model, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))
    assert params == TABLE2_PARAMS
    assert shapes == TABLE2_SHAPES


def test_threshold_cnn_matches_table3():
    model = ThresholdCNN()
    assert count_parameters(model) == 139_505  # sum of Table 3's rows with 65,600 for Dense 64
    assert sum(TABLE3_PARAMS) == 139_505
    shapes, params = _trace(model, (torch.nn.Conv2d, torch.nn.Linear))
    assert params == TABLE3_PARAMS
    assert shapes == TABLE3_SHAPES
    pool_shapes, _ = _trace(model, (torch.nn.MaxPool2d,))
    assert pool_shapes == TABLE3_POOL_SHAPES
    flat, _ = _trace(model, (torch.nn.Flatten,))
    assert flat == [(1024,)]


def test_threshold_cnn_output_is_a_probability():
    out = ThresholdCNN()(torch.rand(4, 1, 64, 64) * 100)
    assert out.shape == (4,)
    assert torch.all((out > 0) & (out < 1))


def test_unet_output_is_linear_and_dropout_configurable():
    model = UNet2D(dropout=(0, 0, 0, 0, 0))
    assert isinstance(list(model.modules())[-1], torch.nn.Conv2d)  # no activation after head
    with pytest.raises(ValueError, match="five rates"):
        UNet2D(dropout=(0.1, 0.2))
