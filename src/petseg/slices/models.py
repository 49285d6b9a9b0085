"""The two 2D networks of Rainio et al. 2023 (Tables 2 and 3), in PyTorch.

PyTorch is channels-first: a Keras output shape ``H × W × C`` in the paper's tables is
``(C, H, W)`` here (plus the batch axis). Weights are initialised as Keras does
(Glorot-uniform kernels, zero biases), so training starts from the same distribution
as the authors' TensorFlow models.

* :class:`UNet2D` — Table 2, 116,753 parameters (the table's row for the first
  post-concatenation convolution reads 18,496 but is 3·3·64·32 + 32 = 18,464; only then
  do the rows add up to the caption's total): 3×3 'same' convolutions with ReLU,
  dropout after the first convolution of every level, 2×2 max-pooling, 2×2 stride-2
  transposed convolutions (no activation, as Keras' default), skip concatenations and
  a final 1×1 convolution with a *linear* output (the authors' code; see
  :func:`petseg.slices.training.clipped_bce` for the loss that goes with it).
* :class:`ThresholdCNN` — Table 3, 139,505 parameters (the paper's caption repeats
  116,753 by mistake; its Dense row of 656,000 should read 65,600 = 1024·64 + 64):
  three pairs of 3×3 'valid' convolutions each followed by 2×2 max-pooling, flatten
  (1024), dense 64 → 32 → 1 with ReLU, and a sigmoid on the last unit, so the predicted
  threshold lies in (0, 1).

Both take ``(N, 1, 64, 64)`` float32 slices scaled to [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "DEFAULT_DROPOUT",
    "THRESHOLD_CNN_PARAMETERS",
    "UNET_PARAMETERS",
    "ThresholdCNN",
    "UNet2D",
    "count_parameters",
]

#: Parameter counts of Tables 2 and 3 (Table 3's total corrected, see the module docstring).
UNET_PARAMETERS = 116_753
THRESHOLD_CNN_PARAMETERS = 139_505

#: Dropout rates of the U-Net's five dropout layers (contracting levels 1-3, expanding
#: levels 2-1). The paper gives none; these are the rates of the common Keras U-Net
#: the authors' Table 2 follows (0.1 at 16 and 32 filters, 0.2 at 64).
DEFAULT_DROPOUT = (0.1, 0.1, 0.2, 0.1, 0.1)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters.

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    int
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _keras_init(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear | nn.Conv3d):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


class _DoubleConv(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, dropout: float) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Conv2d(c_out, c_out, 3, padding=1),
            nn.ReLU(inplace=True),
        )


class UNet2D(nn.Module):
    """Table 2's U-Net: 64×64×1 → 64×64×1, linear output, 116,753 parameters.

    Parameters
    ----------
    dropout : sequence of float
        Five rates of the dropout layers, in the order of Table 2 (default
        :data:`DEFAULT_DROPOUT`).
    """

    def __init__(self, dropout: Sequence[float] = DEFAULT_DROPOUT) -> None:
        super().__init__()
        rates = tuple(float(d) for d in dropout)
        if len(rates) != 5 or not all(0.0 <= d < 1.0 for d in rates):
            raise ValueError(f"dropout must be five rates in [0, 1), got {dropout!r}")
        self.dropout = rates
        self.down1 = _DoubleConv(1, 16, rates[0])
        self.down2 = _DoubleConv(16, 32, rates[1])
        self.bottom = _DoubleConv(32, 64, rates[2])
        self.pool = nn.MaxPool2d(2)
        self.up2 = nn.ConvTranspose2d(64, 32, 2, stride=2)
        self.dec2 = _DoubleConv(64, 32, rates[3])
        self.up1 = nn.ConvTranspose2d(32, 16, 2, stride=2)
        self.dec1 = _DoubleConv(32, 16, rates[4])
        self.head = nn.Conv2d(16, 1, 1)
        _keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Segment a batch of slices.

        Parameters
        ----------
        x : (N, 1, 64, 64) torch.Tensor
            Slices scaled to [0, 1].

        Returns
        -------
        (N, 1, 64, 64) torch.Tensor
            Linear output (not squashed).
        """
        d1 = self.down1(x)
        d2 = self.down2(self.pool(d1))
        b = self.bottom(self.pool(d2))
        u2 = self.dec2(torch.cat([self.up2(b), d2], dim=1))
        u1 = self.dec1(torch.cat([self.up1(u2), d1], dim=1))
        return self.head(u1)


class ThresholdCNN(nn.Module):
    """Table 3's threshold CNN: 64×64×1 → one threshold in (0, 1), 139,505 parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3),
            nn.ReLU(inplace=True),
            nn.Conv2d(16, 16, 3),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, 3),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, 64, 3),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.head = nn.Sequential(
            nn.Linear(1024, 64),
            nn.ReLU(inplace=True),
            nn.Linear(64, 32),
            nn.ReLU(inplace=True),
            nn.Linear(32, 1),
            nn.Sigmoid(),
        )
        _keras_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predict one threshold per slice.

        Parameters
        ----------
        x : (N, 1, 64, 64) torch.Tensor
            The network's input: PET slices or U-Net outputs in [0, 1].

        Returns
        -------
        (N,) torch.Tensor
            Thresholds in (0, 1).
        """
        return self.head(self.features(x)).squeeze(1)
