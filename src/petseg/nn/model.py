"""The network: MONAI's DynUNet (nnU-Net's U-Net) built from a plan.

Two output channels (background, lesion) with a softmax; instance normalisation and
leaky ReLU as in nnU-Net. With ``deep_supervision`` (training only) the two coarser decoder
stages get output heads too; in training mode the network then returns a (B, 3, 2, …)
stack of full-size outputs (MONAI interpolates them), in evaluation mode only the main
output, and the saved inference weights leave the heads out, so an inference model is
always built without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from petseg.nn.plan import Plan

if TYPE_CHECKING:
    import torch

__all__ = ["N_CLASSES", "build_model", "count_parameters"]

#: Output channels: 0 background, 1 lesion.
N_CLASSES = 2


def build_model(plan: Plan, *, deep_supervision: bool = False) -> torch.nn.Module:
    """Build the DynUNet described by ``plan`` (weights initialised by torch's RNG).

    Parameters
    ----------
    plan : the network plan (topology, filters, channels)
    deep_supervision : add output heads on the two coarser decoder stages (training);
        a plan with fewer than four stages gets one head, with two stages none
    """
    heads = min(2, len(plan.strides) - 2) if deep_supervision else 0
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
        deep_supervision=heads > 0,
        deep_supr_num=max(heads, 1),
        res_block=False,
    )


def count_parameters(model: torch.nn.Module) -> int:
    """Number of trainable parameters.

    Parameters
    ----------
    model : torch.nn.Module
        The network (e.g. from :func:`build_model`).

    Returns
    -------
    int
        Sum of the element counts of the parameters with ``requires_grad``.
    """
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
