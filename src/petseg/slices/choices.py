"""Allowed values of the slice networks' settings that are not about precision
(:mod:`petseg.slices.precision`), importable without torch (the command line lists them in
``petseg slices experiment --help``)."""

from __future__ import annotations

__all__ = ["UNET_LOSSES"]

#: The U-Net's loss: Keras' clipped binary cross-entropy on sigmoid outputs (the paper's),
#: or BCE on logits.
UNET_LOSSES = ("clipped_bce", "bce_logits")
