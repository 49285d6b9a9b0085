"""The slice methods from files to files: what ``petseg slices build|experiment|predict`` run.

Each function checks its output target first (nothing is overwritten without ``force``),
reads its inputs, calls the array functions of :mod:`petseg.slices` and writes its output
atomically.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from petseg.slices.build import SLICE_SIZE, SliceSet
from petseg.slices.experiment import ExperimentConfig, ExperimentResult
from petseg.slices.predict import PREDICT_METHODS

__all__ = ["build_to_file", "experiment_to_folder", "predict_to_file"]

PathLike = str | os.PathLike[str]


def build_to_file(
    dataset: PathLike,
    out: PathLike,
    *,
    crop: str,
    size: int = SLICE_SIZE,
    roi: Sequence[str] | None = None,
    force: bool = False,
) -> SliceSet:
    """Select, crop, downscale and scale the tumour slices of a dataset into a slice set.

    Parameters
    ----------
    dataset : path
        Folder of case folders (NIfTI layout, or DICOM with an RTSTRUCT).
    out : path
        The slice set to write (``.npz``).
    crop : str
        Crop box, one of :data:`petseg.slices.build.CROP_PRESETS` or ``bbox:N``.
    size : int
        Side of the output slices in pixels.
    roi : sequence of str, optional
        RTSTRUCT ROI names to use (default all).
    force : bool
        Replace an existing ``out``.

    Returns
    -------
    SliceSet
        The slices written.
    """
    from petseg.io.atomic import check_writable_target
    from petseg.slices.build import build_slice_set
    from petseg.slices.dataset import iter_cases
    from petseg.slices.store import save_slice_set

    check_writable_target(Path(out), force, inputs=[Path(dataset)])
    cases = ((cid, pet, mask) for cid, pet, mask, _ in iter_cases(dataset, roi))
    slices = build_slice_set(
        cases, crop=crop, size=size, meta={"dataset": str(Path(dataset).resolve())}
    )
    save_slice_set(out, slices, force=force)
    return slices


def experiment_to_folder(
    slices: PathLike,
    out: PathLike,
    config: ExperimentConfig,
    *,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ExperimentResult:
    """Run the cross-validated experiment on a slice set and write its tables, figures and models.

    Parameters
    ----------
    slices : path
        Slice set (``.npz``) written by :func:`build_to_file`.
    out : path
        Output folder.
    config : ExperimentConfig
        Folds, epochs, loss, precision, ...
    force : bool
        Replace an existing ``out``.
    progress : callable, optional
        Called with one line per step.

    Returns
    -------
    ExperimentResult
    """
    from petseg.io.atomic import check_writable_target
    from petseg.slices.experiment import run_experiment
    from petseg.slices.store import load_slice_set, write_experiment_outputs

    check_writable_target(Path(out), force, inputs=[Path(slices)])
    slice_set = load_slice_set(slices)
    result = run_experiment(slice_set, config, progress=progress)
    inputs = {"slices": str(Path(slices).resolve()), "slice_meta": slice_set.meta}
    write_experiment_outputs(out, slice_set, result, inputs=inputs, force=force)
    return result


def predict_to_file(
    models: PathLike,
    out: PathLike,
    *,
    slices: PathLike | None = None,
    study: PathLike | None = None,
    method: str = "method2",
    crop: str | None = None,
    force: bool = False,
) -> Path:
    """Apply an experiment's trained models to a slice set or, slice by slice, to a study.

    Parameters
    ----------
    models : path
        ``OUT`` or ``OUT/models`` of :func:`experiment_to_folder`.
    out : path
        Masks (``.npz`` with ``masks``, ``thresholds``, ``patient_ids``) for a slice set;
        a mask NIfTI on the study's grid for a study.
    slices : path, optional
        Slice set (``.npz``); give this or ``study``.
    study : path, optional
        Study folder (DICOM or NIfTI case folder); give this or ``slices``.
    method : {"method1", "method2", "method3"}
        Rainio's method: U-Net + constant threshold, threshold CNN on PET, or on the U-Net output.
    crop : str, optional
        Crop of a study (default: the one the models' slices were built with).
    force : bool
        Replace an existing ``out``.

    Returns
    -------
    Path
        ``out``.
    """
    from petseg.io.atomic import check_writable_target
    from petseg.slices.predict import predict_slices, predict_volume
    from petseg.slices.store import load_models

    if (slices is None) == (study is None):
        raise ValueError("give either a slice set (--slices) or a study (--study), not both")
    if method not in PREDICT_METHODS:
        raise ValueError(f"method must be one of {PREDICT_METHODS}, got {method!r}")
    inputs = [Path(p) for p in (models, slices, study) if p is not None]
    check_writable_target(Path(out), force, inputs=inputs)
    networks, info = load_models(models)
    params = info["parameters"]
    opts: dict[str, Any] = {"unet_loss": params["unet_loss"], "precision": params["precision"]}
    if slices is not None:
        from petseg.io.atomic import atomic_file
        from petseg.slices.store import load_slice_set

        slice_set = load_slice_set(slices)
        masks, thr = predict_slices(networks, slice_set.images, method, **opts)
        with atomic_file(out, force=force) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, masks=masks, thresholds=thr, patient_ids=slice_set.patient_ids)
    else:
        from petseg.io import load_study, write_nifti

        loaded = load_study(study)
        meta = info.get("slice_meta", {})
        mask = predict_volume(
            loaded.pet,
            networks,
            crop=crop or meta.get("crop", ""),
            size=int(meta.get("size", SLICE_SIZE)),
            method=method,
            **opts,
        )
        write_nifti(out, mask.astype(np.uint8), loaded.geometry, force=force)
    return Path(out)
