"""nnU-Net v2 as a petseg engine (optional extra: ``pip install 'petseg[nnunet]'``).

Modules: ``export`` (dataset → nnU-Net raw format), ``engine`` (plan, preprocess, train,
predict through nnU-Net's Python API), ``trainers`` (petseg's short trainer classes),
``importer`` (predictions made elsewhere → petseg outputs). Import the submodules directly;
nothing here imports nnU-Net or torch.
"""

__all__: list[str] = []
