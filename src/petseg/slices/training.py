"""Training and inference of the two 2D networks, with the paper's settings.

Rainio et al. 2023: Adam with learning rate 0.001; binary cross-entropy for the U-Net
(30 epochs) and mean squared error for the threshold CNN (15 epochs); 30 % of the
training data used for validation.

Choices the paper leaves open, made here to match the authors' Keras setting:

* **Validation split** — as Keras' ``fit(validation_split=0.3)``: the *last* 30 % of
  the training arrays, taken before any shuffling, are held out. Slices are ordered by
  patient, so this is in effect a patient-level split. The validation loss is reported
  per epoch but selects nothing (Keras keeps the last epoch's weights by default).
* **Batches** — Keras' default batch size 32, training part reshuffled every epoch.
* **U-Net loss** — ``"clipped_bce"`` (default): the linear output is clipped to
  ``[1e-7, 1 - 1e-7]`` and fed to binary cross-entropy, which is what Keras'
  ``binary_crossentropy`` does with a non-sigmoid output (gradients vanish where the
  output is clipped). ``"bce_logits"`` instead treats the output as logits
  (``BCEWithLogitsLoss``, sigmoid at inference).
* **Precision** — ``"bf16"`` runs the forward passes under
  ``torch.autocast("cpu", torch.bfloat16)`` with float32 weights, optimiser state and
  loss (mixed precision; on CPUs with AMX/AVX-512-BF16 this is about 2-6× faster than
  float32, but on a CPU without them it is emulated and about 8× *slower*); ``"fp32"``
  is plain float32 as in the authors' Keras code. :func:`petseg.slices.precision.resolve_precision` turns
  ``"auto"`` (the experiment's default) into ``"bf16"`` only where the CPU has native
  bf16. Tensors are kept channels-last, which oneDNN
  convolutions prefer.
* **Continuous U-Net output** — clipped to [0, 1] (``clipped_bce``) or passed through a
  sigmoid (``bce_logits``), so that it can be thresholded on the 0.00-0.99 grid.

Determinism: weights, dropout and batch order are drawn from ``torch.manual_seed(seed)``
and a seeded ``torch.Generator``; on CPU two runs with one seed give the same numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from petseg.slices.choices import UNET_LOSSES
from petseg.slices.models import DEFAULT_DROPOUT, ThresholdCNN, UNet2D
from petseg.slices.precision import PRECISIONS

__all__ = [
    "BCE_EPSILON",
    "TrainConfig",
    "clipped_bce",
    "predict_thresholds",
    "predict_unet",
    "train_threshold_cnn",
    "train_unet",
]

#: Keras' backend epsilon, the clipping margin of its binary cross-entropy.
BCE_EPSILON = 1e-7


@dataclass(frozen=True)
class TrainConfig:
    """Training settings of one network (defaults: the paper's, U-Net epochs).

    Parameters
    ----------
    epochs : int
        Passes over the training part (paper: 30 for the U-Net, 15 for the threshold CNN).
    learning_rate : float
        Adam's step size (paper: 0.001).
    batch_size : int
        Keras' default 32.
    validation_split : float
        Fraction of the training arrays, taken from their end, held out (paper: 0.3).
    seed : int
        Seeds weights, dropout and batch order.
    unet_loss : str
        ``"clipped_bce"`` (Keras-faithful) or ``"bce_logits"``.
    dropout : tuple of float
        The five U-Net dropout rates (paper: not given; see :data:`~petseg.slices.models.DEFAULT_DROPOUT`).
    precision : str
        ``"bf16"`` (mixed precision autocast) or ``"fp32"``.
    """

    epochs: int = 30
    learning_rate: float = 1e-3
    batch_size: int = 32
    validation_split: float = 0.3
    seed: int = 0
    unet_loss: str = "clipped_bce"
    dropout: tuple[float, ...] = DEFAULT_DROPOUT
    precision: str = "bf16"

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs}")
        if not 0.0 <= self.validation_split < 1.0:
            raise ValueError(f"validation_split must be in [0, 1), got {self.validation_split}")
        if self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError("batch_size must be >= 1 and learning_rate > 0")
        if self.unet_loss not in UNET_LOSSES:
            raise ValueError(f"unet_loss must be one of {UNET_LOSSES}, got {self.unet_loss!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        return {**asdict(self), "dropout": list(self.dropout)}


def clipped_bce(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Keras' binary cross-entropy of a non-sigmoid output: clip to [ε, 1-ε], then BCE.

    Parameters
    ----------
    output : torch.Tensor
        The network's linear output, any shape.
    target : torch.Tensor
        0/1 float targets of the same shape.

    Returns
    -------
    torch.Tensor
        The mean loss, a scalar.
    """
    p = output.clamp(BCE_EPSILON, 1.0 - BCE_EPSILON)
    return -(target * torch.log(p) + (1.0 - target) * torch.log(1.0 - p)).mean()


def _as_tensor(images: NDArray[np.floating]) -> torch.Tensor:
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"images must be an (N, H, W) stack, got shape {x.shape}")
    t = torch.from_numpy(np.ascontiguousarray(x)).unsqueeze(1)
    return t.contiguous(memory_format=torch.channels_last)


def _forward(model: nn.Module, x: torch.Tensor, precision: str) -> torch.Tensor:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        out = model(x)
    return out.float()


def _fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Any,
    config: TrainConfig,
    desc: str,
) -> dict[str, list[float]]:
    from petseg.progress import progress

    n = len(x)
    n_val = n - int(n * (1.0 - config.validation_split))  # Keras' split point
    n_train = n - n_val
    if n_train < 1:
        raise ValueError(f"no training samples left after the validation split ({n} samples)")
    generator = torch.Generator().manual_seed(config.seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    history: dict[str, list[float]] = {"loss": [], "val_loss": []}
    batches = -(-n_train // config.batch_size)
    bar = progress(total=config.epochs * batches, desc=desc, unit="batch")
    for epoch in range(config.epochs):
        bar.set_postfix_str(f"epoch {epoch + 1}/{config.epochs}", refresh=False)
        model.train()
        order = torch.randperm(n_train, generator=generator)
        total = 0.0
        for start in range(0, n_train, config.batch_size):
            idx = order[start : start + config.batch_size]
            optimiser.zero_grad(set_to_none=True)
            loss = loss_fn(_forward(model, x[idx], config.precision), y[idx])
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
            bar.update(1)
        history["loss"].append(total / n_train)
        if n_val:
            model.eval()
            with torch.no_grad():
                val = sum(
                    float(
                        loss_fn(_forward(model, x[s : s + 256], config.precision), y[s : s + 256])
                    )
                    * len(x[s : s + 256])
                    for s in range(n_train, n, 256)
                )
            history["val_loss"].append(val / n_val)
    bar.close()
    model.eval()
    return history


def train_unet(
    images: NDArray[np.floating],
    masks: NDArray[np.bool_],
    config: TrainConfig,
    *,
    desc: str = "U-Net",
) -> tuple[UNet2D, dict[str, list[float]]]:
    """Train Table 2's U-Net from scratch on ``(N, 64, 64)`` slices and masks.

    Parameters
    ----------
    images : (N, 64, 64) float ndarray
        Slices scaled to [0, 1].
    masks : (N, 64, 64) bool ndarray
        Tumour pixels.
    config : TrainConfig
        Epochs, batch, learning rate, loss, precision, seed.
    desc : str
        Names its progress bar (:mod:`petseg.progress`: epoch, batches and ETA).

    Returns
    -------
    model : UNet2D
        The trained model, in eval mode.
    history : dict of str to list of float
        Per-epoch ``loss`` and ``val_loss``.
    """
    torch.manual_seed(config.seed)
    model = UNet2D(config.dropout).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    x = _as_tensor(images)
    y = _as_tensor(np.asarray(masks, dtype=np.float32))
    loss_fn = clipped_bce if config.unet_loss == "clipped_bce" else nn.BCEWithLogitsLoss()
    return model, _fit(model, x, y, loss_fn, config, desc)


def train_threshold_cnn(
    images: NDArray[np.floating],
    thresholds: NDArray[np.floating],
    config: TrainConfig,
    *,
    desc: str = "threshold CNN",
) -> tuple[ThresholdCNN, dict[str, list[float]]]:
    """Train Table 3's threshold CNN from scratch (MSE against the optimal thresholds).

    Parameters
    ----------
    images : (N, 64, 64) float ndarray
        Slices (or U-Net outputs) scaled to [0, 1].
    thresholds : (N,) float ndarray
        The optimal threshold of each slice, in [0, 1].
    config : TrainConfig
        Epochs, batch, learning rate, precision, seed.
    desc : str
        Names its progress bar (:mod:`petseg.progress`: epoch, batches and ETA).

    Returns
    -------
    model : ThresholdCNN
        Trained, in eval mode.
    history : dict of str to list of float
        Training and validation loss of each epoch (``loss``, ``val_loss``).
    """
    thresholds = np.asarray(thresholds, dtype=np.float32)
    if thresholds.shape != (len(images),):
        raise ValueError(
            f"need one threshold per image: {len(images)} images, thresholds shape {thresholds.shape}"
        )
    torch.manual_seed(config.seed)
    model = ThresholdCNN().to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    x = _as_tensor(images)
    return model, _fit(model, x, torch.from_numpy(thresholds), nn.MSELoss(), config, desc)


def predict_unet(
    model: UNet2D,
    images: NDArray[np.floating],
    unet_loss: str = "clipped_bce",
    precision: str = "bf16",
) -> NDArray[np.float32]:
    """Continuous U-Net output in [0, 1] (see module docstring).

    Parameters
    ----------
    model : UNet2D
        A trained U-Net.
    images : (N, 64, 64) float ndarray
        Slices scaled to [0, 1].
    unet_loss : {"clipped_bce", "bce_logits"}
        The loss the U-Net was trained with: its output is clipped to [0, 1], or passed
        through a sigmoid.
    precision : {"bf16", "fp32"}
        Arithmetic of the forward pass on the CPU.

    Returns
    -------
    (N, 64, 64) float32 ndarray
    """
    if unet_loss not in UNET_LOSSES:
        raise ValueError(f"unet_loss must be one of {UNET_LOSSES}, got {unet_loss!r}")
    x = _as_tensor(images)
    model.eval()
    with torch.no_grad():
        parts = [_forward(model, x[s : s + 256], precision) for s in range(0, len(x), 256)]
        out = torch.cat(parts) if parts else x
    out = out.clamp(0.0, 1.0) if unet_loss == "clipped_bce" else torch.sigmoid(out)
    return np.ascontiguousarray(out.squeeze(1).numpy(), dtype=np.float32)


def predict_thresholds(
    model: ThresholdCNN, images: NDArray[np.floating], precision: str = "bf16"
) -> NDArray[np.float64]:
    """One threshold in (0, 1) per image.

    Parameters
    ----------
    model : ThresholdCNN
        A trained threshold CNN.
    images : (N, 64, 64) float ndarray
        Its inputs, scaled to [0, 1].
    precision : {"bf16", "fp32"}
        Arithmetic of the forward pass on the CPU.

    Returns
    -------
    (N,) float64 ndarray
    """
    x = _as_tensor(images)
    model.eval()
    with torch.no_grad():
        out = [_forward(model, x[s : s + 256], precision) for s in range(0, len(x), 256)]
    return torch.cat(out).double().numpy() if out else np.zeros(0)
