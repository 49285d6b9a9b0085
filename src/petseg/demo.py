"""``petseg demo``: the main job on an embedded default, with no user data.

Makes one synthetic whole-body [64Cu]Cu-DOTATATE PET/CT phantom study, segments it with
the liver-reference threshold method of Carlsen et al. 2022 (reference sphere in normal
liver), compares the result with the phantom's ground truth, and — when the shipped
demonstration model is installed — does the same with the 3D network ensemble. The
``liver-automatic`` row is the method with no coordinate given: the reference VOI placed
automatically in the liver of the phantom's organ map (:mod:`petseg.autoref`) and
physiological uptake removed by the DOTATATE tracer profile.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from petseg import __version__
from petseg.io.atomic import atomic_dir, check_writable_target
from petseg.jsonable import to_jsonable

if TYPE_CHECKING:
    from petseg.result import SegmentationResult

__all__ = ["DemoResult", "run_demo"]

DEFAULT_SEED = 7
SUMMARY_KEYS = (
    "pixel_dice",
    "pixel_precision",
    "pixel_sensitivity",
    "n_true_lesions",
    "n_pred_lesions",
    "lesion_fn",
    "lesion_fp",
    "lesion_sensitivity",
    "lesion_dice_f1",
    "score",
)


@dataclass
class DemoResult:
    """Where the demo wrote its outputs and what it measured (one row per method).

    Attributes
    ----------
    out_dir : Path
        The demo folder.
    rows : dict of str to dict
        Per method (and ``truth``): lesion counts, Dice, score, TTV (mL), SUVs (g/mL).
    """

    out_dir: Path
    rows: dict[str, dict[str, Any]]


def phantom_organ_map(case: Any) -> Any:
    """The phantom's organ labels as an :class:`petseg.organs.OrganMap` (names mapped to
    petseg's vocabulary: ``kidneys``, ``adrenal_glands``, ``urinary_bladder``, …).

    Parameters
    ----------
    case : PhantomCase
        A generated phantom study with its organ labels and truth.

    Returns
    -------
    OrganMap
    """
    from petseg.organs import organ_map_from_labels

    legend = {int(code): name for code, name in case.truth["organ_legend"].items()}
    return organ_map_from_labels(
        case.organs,
        case.study.geometry,
        legend,
        source={"reader": "petseg phantom organ labels (ground truth)", "synthetic": True},
    )


def review_flags(result: SegmentationResult, truth: np.ndarray) -> dict[str, int]:
    """How many segmented lesions carry the ``review_first`` flag, and how many of them
    (and of all lesions) are false positives (no truth voxel inside).

    Parameters
    ----------
    result : SegmentationResult
        A fold-ensemble prediction (with ``lesion_uncertainty``).
    truth : (Z, Y, X) ndarray
        True lesion map on the same grid, read as ``> 0``.
    """
    flags = {u.label: u.review_first for u in result.lesion_uncertainty or []}
    false = {k for k in flags if not np.any(truth[result.labels == k])}
    return {
        "review_first": sum(flags.values()),
        "false_positives": len(false),
        "review_first_false_positives": sum(flags[k] for k in false),
    }


def _truth_row(case: Any) -> dict[str, Any]:
    """The phantom's own numbers: true lesion count, TTV (mL), SUVs (g/mL)."""
    from petseg.lesions import patient_stats, quantify_lesions

    stats = patient_stats(quantify_lesions(case.study.pet, case.lesions, case.study.geometry))
    patient = stats.to_dict()
    return {
        "n_true_lesions": case.truth["lesion_count"],
        "ttv_ml": patient["total_tumour_volume_ml"],
        "lowest_lesion_suv_mean": patient["lowest_lesion_suv_mean"],
        "highest_suv_max": patient["highest_suv_max"],
    }


def _write_phantom(folder: Path, case: Any) -> None:
    """The phantom's images, truth lesions, organs and ``truth.json`` into ``folder``."""
    from petseg.io.nifti import write_nifti

    study = case.study
    folder.mkdir()
    write_nifti(folder / "pet.nii.gz", study.pet, study.geometry)
    if study.ct is not None:
        write_nifti(folder / "ct.nii.gz", study.ct, study.geometry)
    write_nifti(folder / "lesions.nii.gz", case.lesions, study.geometry)
    write_nifti(folder / "organs.nii.gz", case.organs, study.geometry)
    (folder / "truth.json").write_text(json.dumps(case.truth, indent=2) + "\n")


def _method_row(folder: Path, case: Any, result: Any) -> dict[str, Any]:
    """Write one method's case folder; its row of the summary against the truth."""
    from petseg.report import write_segmentation_outputs

    write_segmentation_outputs(folder, case.study, result)
    return _summary_row(result.labels, case, result.patient.to_dict())


def _summary_row(pred: np.ndarray, case: Any, patient: dict[str, Any]) -> dict[str, Any]:
    from petseg.evaluate import evaluate_case

    metrics = evaluate_case(pred, case.lesions, case.study.geometry)
    row = {key: metrics[key] for key in SUMMARY_KEYS}
    row.update(
        {
            "ttv_ml": patient["total_tumour_volume_ml"],
            "lowest_lesion_suv_mean": patient["lowest_lesion_suv_mean"],
            "highest_suv_max": patient["highest_suv_max"],
        }
    )
    return row


def _demo_model_dir() -> Path | None:
    from petseg.nn.infer import DEMO_MODEL

    return DEMO_MODEL if any(DEMO_MODEL.glob("fold_*/model.pt")) else None


def _ai_row(case: Any, model_dir: Path, out: Path) -> dict[str, Any]:
    """Predict the phantom with the demonstration ensemble into ``out``; its summary row
    with the uncertainty flags (:func:`review_flags`)."""
    from petseg.engine import get_engine, prediction_files
    from petseg.report import write_segmentation_outputs

    engine = get_engine("builtin")
    prediction = engine.predict(case.study, engine.load(model_dir))
    result = prediction.result
    result.extra["model"]["note"] = (
        "demonstration model trained 53 min on a CPU with synthetic phantoms: see its MODEL_CARD.md"
    )
    extras = prediction_files(prediction, case.study, save_probabilities=False)
    write_segmentation_outputs(out, case.study, result, extras=extras)
    row = _summary_row(result.labels, case, result.patient.to_dict())
    return row | review_flags(result, case.lesions)


def run_demo(
    out_dir: str | Path,
    *,
    seed: int = DEFAULT_SEED,
    spacing: tuple[float, float, float] = (4.0, 4.0, 4.0),
    ai: bool = False,
    force: bool = False,
) -> DemoResult:
    """Generate a phantom, segment it, compare with the truth; write everything to ``out_dir``.

    Layout: ``phantom/`` (pet, ct, truth lesions, organs, truth.json),
    ``liver-threshold/`` (reference sphere at the liver's centre from the truth),
    ``liver-threshold-corrected/`` (physiological uptake removed as the physician does in
    the paper, here by the DOTATATE tracer profile with the phantom's organ labels as organ
    map: spleen, kidneys, adrenal glands, urinary bladder, pituitary), ``liver-automatic/``
    (no coordinate: the reference VOI placed automatically in the organ map's liver, the
    same removal), and, with the shipped model, ``ai-ensemble/`` (case folders as
    ``petseg segment`` writes them), and ``summary.json``.

    Parameters
    ----------
    out_dir : path
        The demo folder; must not exist unless ``force``.
    seed : int
        Phantom seed (same seed, same study).
    spacing : (dz, dy, dx) tuple of float
        Voxel size of the phantom in mm.
    ai : bool
        Also run the shipped demonstration network, when installed.
    force : bool
        Replace an existing ``out_dir`` written by petseg.

    Returns
    -------
    DemoResult
    """
    from petseg.phantom import generate_study
    from petseg.pipeline import SegmentParams, segment_study
    from petseg.tracers import TracerChoice, get_tracer

    out_dir = Path(out_dir)
    check_writable_target(out_dir, force)  # before minutes of work
    case = generate_study(seed, spacing=spacing, patient_id=f"phantom-{seed:03d}")
    study = case.study
    liver = case.truth["reference"]["liver"]
    params = SegmentParams(method="liver", ref_sphere=(*liver["centre_mm"], liver["radius_mm"]))
    rows: dict[str, dict[str, Any]] = {"truth": _truth_row(case)}
    with atomic_dir(out_dir, force=force) as tmp:
        _write_phantom(tmp / "phantom", case)
        result = segment_study(study, params)
        rows["liver-threshold"] = _method_row(tmp / "liver-threshold", case, result)

        # The physician's step of Carlsen et al.: volumes of physiological uptake removed,
        # here by the DOTATATE profile with the phantom's own organ labels.
        tracer = TracerChoice(get_tracer("dotatate"), "phantom ([64Cu]Cu-DOTATATE)", None)
        organ_map = phantom_organ_map(case)
        corrected = segment_study(study, params, organs=organ_map, tracer=tracer)
        rows["liver-corrected"] = _method_row(tmp / "liver-threshold-corrected", case, corrected)

        # No coordinate given: the reference VOI is placed in the organ map's liver.
        automatic = segment_study(
            study, SegmentParams(method="liver"), organs=organ_map, tracer=tracer
        )
        rows["liver-automatic"] = _method_row(tmp / "liver-automatic", case, automatic)

        model_dir = _demo_model_dir() if ai else None
        if model_dir is not None:
            rows["ai-ensemble"] = _ai_row(case, model_dir, tmp / "ai-ensemble")

        _write_summary(tmp / "summary.json", seed, spacing, liver, (result, automatic), rows)
    return DemoResult(out_dir=out_dir, rows=rows)


def _write_summary(
    path: Path,
    seed: int,
    spacing: tuple[float, float, float],
    liver: dict[str, Any],
    results: tuple[Any, Any],
    rows: dict[str, dict[str, Any]],
) -> None:
    """``summary.json``: the phantom's settings, the given and the automatic reference
    (``results``: the liver-threshold and liver-automatic segmentations) and every row."""
    given, automatic = results
    summary = {
        "petseg_version": __version__,
        "synthetic": True,
        "note": "SYNTHETIC DATA: a petseg phantom standing in for real [64Cu]Cu-DOTATATE PET/CT.",
        "seed": seed,
        "spacing_mm_zyx": list(spacing),
        "reference_sphere": liver,
        "threshold_suv": given.threshold_suv,
        "automatic_reference": (automatic.reference or {}).get("automatic"),
        "automatic_threshold_suv": automatic.threshold_suv,
        "rows": rows,
    }
    path.write_text(json.dumps(to_jsonable(summary), indent=2, allow_nan=False) + "\n")


def format_summary(result: DemoResult) -> str:
    """A small plain-text table of the demo's rows for the terminal.

    Parameters
    ----------
    result : DemoResult
        What :func:`run_demo` returned.

    Returns
    -------
    str
    """
    columns = [
        ("lesions", "n_pred_lesions"),
        ("missed", "lesion_fn"),
        ("FP", "lesion_fp"),
        ("Dice", "pixel_dice"),
        ("les.sens", "lesion_sensitivity"),
        ("score", "score"),
        ("TTV mL", "ttv_ml"),
        ("min SUVmean", "lowest_lesion_suv_mean"),
    ]
    lines = [f"{'':16}" + "".join(f"{name:>12}" for name, _ in columns)]
    for method, row in result.rows.items():
        cells = []
        for _, key in columns:
            value = row.get(
                key if method != "truth" or key != "n_pred_lesions" else "n_true_lesions"
            )
            if value is None or (isinstance(value, float) and not np.isfinite(value)):
                cells.append(f"{'-':>12}")
            elif isinstance(value, float):
                cells.append(f"{value:12.3f}")
            else:
                cells.append(f"{value:>12}")
        lines.append(f"{method:16}" + "".join(cells))
    return "\n".join(lines)
