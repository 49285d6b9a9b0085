"""Phantom datasets on disk: case folders in petseg's dataset layout, optionally DICOM."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np

from petseg import __version__
from petseg.io.dicom_write import CU64_HALF_LIFE_S
from petseg.phantom.config import (
    DEFAULT_SPACING,
    SYNTHETIC_NOTE,
    PhantomConfig,
    check_spacing,
)
from petseg.phantom.generate import PhantomCase, generate_study

__all__ = ["CASE_FILES", "write_dataset"]

#: The files of every case folder (``dicom/pet`` and ``dicom/ct`` are added with DICOM).
CASE_FILES = ("pet.nii.gz", "ct.nii.gz", "lesions.nii.gz", "organs.nii.gz", "truth.json")


def _case_plan(n: int, seed: int, negatives: int) -> list[tuple[str, int, bool]]:
    """(case id, case seed, negative control) for every case of a dataset."""
    children = np.random.SeedSequence(seed).spawn(n + negatives)
    seeds = [int(c.generate_state(1, np.uint32)[0]) for c in children]
    plan = [(f"phantom_{i:04d}", seeds[i], False) for i in range(n)]
    plan += [(f"control_{i:04d}", seeds[n + i], True) for i in range(negatives)]
    return plan


def _write_dicom(folder: Path, case: PhantomCase, case_seed: int) -> dict[str, Any]:
    """PET (BQML with SUV headers) and CT series of a case; returns the header values.

    Dose and times are drawn from ``case_seed``; the study, frame and series UIDs are
    derived from it, so a rewritten case keeps them.
    """
    import pydicom.uid

    from petseg.io.dicom_write import PetAcquisition, write_ct_series, write_pet_series

    rng = np.random.default_rng([case_seed, 64])
    dose = float(rng.uniform(180e6, 220e6))
    series_time = dt.datetime(2024, 1, 1, 10, 0, 0) + dt.timedelta(
        minutes=int(rng.integers(0, 360))
    )
    injection_time = series_time - dt.timedelta(seconds=float(rng.uniform(55, 65) * 60))
    acquisition = PetAcquisition(
        weight_kg=float(case.truth["patient"]["weight_kg"]),
        dose_bq=dose,
        injection_time=injection_time,
        series_time=series_time,
        half_life_s=CU64_HALF_LIFE_S,
        radiopharmaceutical="Cu-64 DOTATATE",
    )

    def uid(what: str) -> str:
        return str(pydicom.uid.generate_uid(entropy_srcs=[f"petseg-phantom-{case_seed}", what]))

    study = case.study
    assert study.ct is not None
    identity: dict[str, Any] = {
        "patient_id": study.patient_id,
        "patient_name": f"PHANTOM^{study.patient_id}",
        "study_instance_uid": uid("study"),
        "frame_of_reference_uid": uid("frame"),
    }
    write_pet_series(
        folder / "pet",
        study.pet,
        study.geometry,
        acquisition,
        series_instance_uid=uid("pet"),
        description="SYNTHETIC petseg phantom PET",
        **identity,
    )
    write_ct_series(
        folder / "ct",
        study.ct,
        study.geometry,
        series_instance_uid=uid("ct"),
        study_time=series_time,
        series_time=series_time - dt.timedelta(minutes=5),
        description="SYNTHETIC petseg phantom CT",
        **identity,
    )
    return {
        "weight_kg": acquisition.weight_kg,
        "dose_bq": round(dose, 1),
        "half_life_s": CU64_HALF_LIFE_S,
        "injection_time": injection_time.isoformat(),
        "series_time": series_time.isoformat(),
        "radiopharmaceutical": acquisition.radiopharmaceutical,
        "units": "BQML",
        "study_instance_uid": identity["study_instance_uid"],
        "frame_of_reference_uid": identity["frame_of_reference_uid"],
    }


def write_dataset(
    out_dir: str | Path,
    *,
    n: int,
    seed: int,
    negatives: int = 0,
    spacing: tuple[float, float, float] = DEFAULT_SPACING,
    dicom: bool = False,
    force: bool = False,
    progress: bool = True,
    config: PhantomConfig | None = None,
) -> Path:
    """Write a phantom dataset in petseg's dataset layout (``docs/dataset-layout.md``).

    ``n`` patients with lesions (``phantom_0000``…) and ``negatives`` negative controls
    without lesions (``control_0000``…), each with pet.nii.gz (SUVbw), ct.nii.gz (HU),
    lesions.nii.gz, organs.nii.gz, truth.json and, with ``dicom``, ``dicom/pet`` (BQML
    with SUV headers) and ``dicom/ct``; dataset.json at the root. The whole folder is
    written atomically and never replaces an existing one without ``force``.

    Each case's seed is derived from ``seed`` (``numpy.random.SeedSequence.spawn``) and
    recorded in its truth.json, so ``generate_study(case_seed)`` rebuilds it alone.

    Parameters
    ----------
    out_dir : path
        The dataset folder; must not exist unless ``force``.
    n : int
        Patients with lesions.
    seed : int
        Dataset seed (≥ 0).
    negatives : int
        Negative controls without lesions.
    spacing : (3,) tuple of float
        ``(dz, dy, dx)`` voxel size in mm.
    dicom : bool
        Also write each case as DICOM PET and CT series.
    force : bool
        Replace an existing dataset folder.
    progress : bool
        Show a progress bar on stderr.
    config : PhantomConfig, optional
        Generator parameters (default :class:`~petseg.phantom.config.PhantomConfig`).

    Returns
    -------
    Path
        The dataset folder.
    """
    from petseg.io.atomic import atomic_dir, write_json_atomic
    from petseg.progress import progress as progress_bar

    config = config or PhantomConfig()
    spacing = check_spacing(spacing)
    if n < 0 or negatives < 0 or n + negatives < 1:
        raise ValueError(f"need at least one case: got n={n}, negatives={negatives}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    plan = _case_plan(n, seed, negatives)
    out = Path(out_dir)
    with atomic_dir(out, force=force) as tmp:
        for case_id, case_seed, negative in (
            progress_bar(plan, desc="phantom", unit="case") if progress else plan
        ):
            case = generate_study(
                case_seed,
                spacing=spacing,
                negative_control=negative,
                config=config,
                patient_id=case_id,
            )
            truth = {"case_id": case_id, "dataset_seed": seed, **case.truth}
            _write_case(tmp / case_id, case, truth, case_seed if dicom else None)
        record = _dataset_record(plan, seed, dicom, config, spacing)
        write_json_atomic(tmp / "dataset.json", record)
    return out


def _dataset_record(
    plan: list[tuple[str, int, bool]],
    seed: int,
    dicom: bool,
    config: PhantomConfig,
    spacing: tuple[float, float, float],
) -> dict[str, Any]:
    """The dataset.json record: what was generated, how, and each case's seed."""
    return {
        "name": "petseg whole-body [64Cu]Cu-DOTATATE phantom",
        "synthetic": True,
        "note": SYNTHETIC_NOTE,
        "petseg_version": __version__,
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "generator": "petseg.phantom.write_dataset",
        "parameters": {
            "n": sum(not negative for _, _, negative in plan),
            "negatives": sum(negative for _, _, negative in plan),
            "seed": seed,
            "spacing_mm_zyx": list(spacing),
            "dicom": dicom,
            "config": config.to_dict(),
        },
        "cases": [case_id for case_id, _, _ in plan],
        "negative_controls": [case_id for case_id, _, neg in plan if neg],
        "case_seeds": {case_id: s for case_id, s, _ in plan},
        "files": [*CASE_FILES, *(["dicom/pet", "dicom/ct"] if dicom else [])],
    }


def _write_case(
    folder: Path, case: PhantomCase, truth: dict[str, Any], dicom_seed: int | None
) -> None:
    """The files of one case folder (:data:`CASE_FILES`, and DICOM with a seed)."""
    from petseg.io.atomic import write_json_atomic
    from petseg.io.nifti import write_nifti

    folder.mkdir()
    study = case.study
    assert study.ct is not None
    write_nifti(folder / "pet.nii.gz", study.pet, study.geometry)
    write_nifti(folder / "ct.nii.gz", study.ct.astype(np.int16), study.geometry)
    write_nifti(folder / "lesions.nii.gz", case.lesions, study.geometry)
    write_nifti(folder / "organs.nii.gz", case.organs, study.geometry)
    if dicom_seed is not None:
        truth["dicom"] = _write_dicom(folder / "dicom", case, dicom_seed)
    write_json_atomic(folder / "truth.json", truth)
