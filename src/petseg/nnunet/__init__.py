"""nnU-Net v2 as a petseg engine (optional extra: ``pip install 'petseg[nnunet]'``).

Modules: ``export`` (dataset → nnU-Net raw format), ``engine`` (nnU-Net as a
:class:`petseg.engine.Engine`), behind it ``environment`` (installation, environment
variables, work folder), ``training``, ``loading`` and ``prediction`` (through nnU-Net's
Python API), ``trainers`` (petseg's short trainer classes and the lookup by name),
``importer`` (predictions made elsewhere → petseg outputs). Import the submodules directly;
nothing here imports nnU-Net or torch.
"""

__all__: list[str] = []
