"""The network: MONAI's DynUNet (nnU-Net's U-Net) built from a plan.

Two output channels (background, lesion) with a softmax; instance normalisation and
leaky ReLU as in nnU-Net. Deep supervision is not used (the loss is on the full
resolution output only), which keeps the CPU training step cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from petseg.nn.plan import Plan

if TYPE_CHECKING:
    import torch

__all__ = ["N_CLASSES", "build_model", "count_parameters"]

#: Output channels: 0 background, 1 lesion.
N_CLASSES = 2


def build_model(plan: Plan) -> torch.nn.Module:
    """Build the DynUNet described by ``plan`` (weights initialised by torch's RNG)."""
    from monai.networks.nets import DynUNet

    return DynUNet(
        spatial_dims=3,
        in_channels=len(plan.channels),
        out_channels=N_CLASSES,
        kernel_size=[list(k) for k in plan.kernel_sizes],
        strides=[list(s) for s in plan.strides],
        upsample_kernel_size=[list(s) for s in plan.strides[1:]],
        filters=list(plan.filters),
        norm_name=("INSTANCE", {"affine": True}),
        act_name=("leakyrelu", {"inplace": True, "negative_slope": 0.01}),
        deep_supervision=False,
        res_block=False,
    )


def count_parameters(model: torch.nn.Module) -> int:
    """Number of trainable parameters."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
