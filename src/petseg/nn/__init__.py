"""The 3D network: nnU-Net-style planning, k-fold training and ensemble inference.

Built on PyTorch and MONAI (DynUNet, DiceCELoss, sliding-window inference). Modules:
``plan`` (fingerprint and plan), ``folds`` (patient-level split), ``data`` (cases,
resampling, normalisation, patches, augmentation), ``model`` (DynUNet from a plan),
``train`` (fold training with checkpoints and resume), ``infer`` (ensemble prediction
and post-processing). Import the submodules directly; nothing heavy is imported here.
"""

__all__: list[str] = []
