"""nnU-Net's installation, its environment variables and its work-folder names.

nnU-Net finds its folders through the environment variables ``nnUNet_raw``,
``nnUNet_preprocessed`` and ``nnUNet_results``. :func:`nnunet_environment` sets them (and
``nnUNet_n_proc_DA``, ``nnUNet_compile``) for the duration of one call and restores
``os.environ`` afterwards; nothing is set globally. nnU-Net ≥ 2.8 reads them when used
(``nnunetv2.paths._EnvPath``), which is what makes this possible.

Work folder of :func:`petseg.nnunet.training.train_nnunet`::

    nnUNet_raw/Dataset<ID>_<NAME>/        the exported dataset (petseg.nnunet.export)
    nnUNet_preprocessed/Dataset<ID>_<NAME>/
        nnUNetPlans.json, dataset_fingerprint.json, splits_final.json (= petseg's folds)
    nnUNet_results/Dataset<ID>_<NAME>/<Trainer>__nnUNetPlans__<configuration>/
        plans.json, dataset.json, fold_<k>/checkpoint_final.pth
    folds.json                            petseg's split (petseg.nn.folds, as the built-in engine)
    petseg_nnunet.json                    provenance: versions, configuration, trainer, budget,
                                          PET normalisation, folds, seconds per fold
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "INSTALL_HINT",
    "PLANS_IDENTIFIER",
    "WORK_FILE",
    "nnunet_environment",
    "nnunet_version",
    "quiet_nnunet_warnings",
    "require_nnunet",
]

INSTALL_HINT = (
    "nnU-Net is an optional extra: install it with  pip install 'petseg[nnunet]'  "
    "(then  pip uninstall -y torchvision timm  if torchvision fails to import beside a CPU torch)"
)
PLANS_IDENTIFIER = "nnUNetPlans"
MIN_NNUNET_VERSION = (2, 8)
#: The provenance file of a petseg nnU-Net work folder.
WORK_FILE = "petseg_nnunet.json"


def nnunet_version() -> str:
    """The installed nnunetv2 version; ImportError with the install command if absent."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nnunetv2")
    except PackageNotFoundError:
        raise ImportError(INSTALL_HINT) from None


def require_nnunet() -> str:
    """Check that nnunetv2 ≥ 2.8 is importable; return its version."""
    found = nnunet_version()
    try:
        import nnunetv2  # noqa: F401
    except ImportError as err:
        raise ImportError(
            f"nnunetv2 {found} is installed but fails to import ({err}). {INSTALL_HINT}"
        ) from err
    parts = tuple(int(p) for p in found.split(".")[:2] if p.isdigit())
    if parts < MIN_NNUNET_VERSION:
        raise ImportError(
            f"nnunetv2 {found} reads its folders at import time; petseg needs nnunetv2 >= "
            f"{'.'.join(map(str, MIN_NNUNET_VERSION))}: pip install -U 'petseg[nnunet]'"
        )
    return found


@contextlib.contextmanager
def nnunet_environment(
    work: str | Path, *, data_workers: int = 0, compile_network: bool = False
) -> Iterator[dict[str, str]]:
    """Set nnU-Net's environment variables for the block only, then restore ``os.environ``.

    Parameters
    ----------
    work : folder holding ``nnUNet_raw``, ``nnUNet_preprocessed``, ``nnUNet_results``
    data_workers : ``nnUNet_n_proc_DA``, data-augmentation worker processes (0 = in-process)
    compile_network : ``nnUNet_compile`` (torch.compile; nnU-Net never compiles on CPU)
    """
    work = Path(work).resolve()
    values = {
        "nnUNet_raw": str(work / "nnUNet_raw"),
        "nnUNet_preprocessed": str(work / "nnUNet_preprocessed"),
        "nnUNet_results": str(work / "nnUNet_results"),
        "nnUNet_n_proc_DA": str(int(data_workers)),
        "nnUNet_compile": "true" if compile_network else "false",
    }
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield values
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@contextlib.contextmanager
def quiet_nnunet_warnings() -> Iterator[None]:
    """nnU-Net's own deprecation noise, silenced only inside its calls (petseg runs tests with
    warnings as errors): ``distutils`` (preprocessing), torch's ``lr_scheduler.step`` order
    note, and ``torch.load(weights_only=False)`` in its checkpoint loading."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"nnunetv2|distutils")
        warnings.filterwarnings("ignore", message=r".*distutils.*", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r".*lr_scheduler\.step.*", category=UserWarning)
        yield
