"""Evaluate the automatic reference VOI on phantoms and on the real data in ../shared/data.

Usage (the figures in README.md)::

    petseg phantom --n 50 --seed 1300 --out PHANTOMS
    python experiments/autoref/run.py PHANTOMS --out results.json [--shared ../shared/data]

Per phantom and per organ source (the phantom's organ labels as organ map; the CT; the
PET alone), the automatic VOI is checked against the truth: inside the true liver and
free of true lesions; its threshold against the threshold of the lesion-free sphere at
the liver's centre that the generator records (``truth.json`` ``reference.liver``). With
the organ map, the whole pipeline (automatic VOI, physiological uptake removed by the
DOTATATE tracer profile) is compared with the physician-corrected row (sphere from the
truth, the same removal): pixel Dice against the true lesions, and predicted
components without a true lesion that touch a physiological organ.

On the real data: the CT-only liver point inside TotalSegmentator's liver
(``ct-organs``, small and full CT), the PET-only VOI's distance to the two labelled liver
lesions of the DOTATATE SPECT, and the refusal of every cropped sarcoma study.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from petseg.autoref import NoReferenceError, place_reference
from petseg.autoref.find import find_liver_ct
from petseg.autoref.place import place_in_organ
from petseg.evaluate import evaluate_case
from petseg.io.nifti import read_nifti
from petseg.jsonable import to_jsonable
from petseg.organs import organ_map_from_labels
from petseg.pipeline import SegmentParams, segment_study
from petseg.progress import progress
from petseg.reference import sphere_mask
from petseg.study import Study
from petseg.tracers import TracerChoice, get_tracer

LIVER, SPLEEN = 9, 10  # petseg phantom organ labels
SOURCES = ("organ map", "CT", "PET")


def phantom_case(folder: Path) -> dict[str, Any]:
    pet, geometry = read_nifti(folder / "pet.nii.gz")
    ct, _ = read_nifti(folder / "ct.nii.gz")
    organs, _ = read_nifti(folder / "organs.nii.gz")
    lesions, _ = read_nifti(folder / "lesions.nii.gz")
    truth = json.loads((folder / "truth.json").read_text())
    legend = {name: int(code) for code, name in truth["organ_legend"].items()}
    masks = {name: organs == code for name, code in legend.items()}
    reference = truth["reference"]["liver"]
    row: dict[str, Any] = {"case": folder.name, "truth_threshold_suv": reference["threshold_suv"]}
    for source in SOURCES:
        kwargs: dict[str, Any] = {}
        if source == "organ map":
            kwargs["organ_masks"] = {"liver": masks["liver"], "spleen": masks["spleen"]}
        elif source == "CT":
            kwargs["ct"] = ct
        start = time.perf_counter()
        try:
            auto = place_reference(pet, geometry, **kwargs)
        except NoReferenceError as err:
            row[source] = {"refused": str(err)}
            continue
        seconds = time.perf_counter() - start
        placement = auto.placement
        row[source] = {
            "source": auto.source,
            "organ": auto.organ,
            "inside_liver": bool((organs[auto.mask] == LIVER).all()),
            "lesion_voxels": int(np.count_nonzero(lesions[auto.mask])),
            "threshold_suv": placement.threshold_suv,
            "threshold_rel_error": placement.threshold_suv / reference["threshold_suv"] - 1,
            "confidence": placement.confidence,
            "iterations": placement.iterations,
            "converged": placement.converged,
            "radius_mm": placement.radius_mm,
            "switch": auto.switch,
            "seconds": seconds,
        }
    organ_map = organ_map_from_labels(organs, geometry, {v: k for k, v in legend.items()})
    tracer = TracerChoice(get_tracer("dotatate"), "phantom ([64Cu]Cu-DOTATATE)", None)
    study = Study(pet=pet, geometry=geometry, ct=ct, patient_id=folder.name)
    given = SegmentParams(method="liver", ref_sphere=(*reference["centre_mm"], 15.0))
    corrected = segment_study(study, given, organs=organ_map, tracer=tracer)
    automatic = segment_study(study, SegmentParams(method="liver"), organs=organ_map, tracer=tracer)
    in_organs = organ_map.mask(*tracer.profile.physiological)
    for name, result in (("corrected", corrected), ("automatic", automatic)):
        metrics = evaluate_case(result.labels, lesions, geometry)
        row[f"{name}_pixel_dice"] = metrics["pixel_dice"]
        row[f"{name}_fp_in_physiological_organs"] = fp_in_organs(
            result.labels, lesions > 0, in_organs
        )
    return row


def fp_in_organs(labels: np.ndarray, truth: np.ndarray, organs: np.ndarray) -> int:
    """Predicted components that overlap no true lesion and touch a physiological organ."""
    count = 0
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        component = labels[box] == label
        if not truth[box][component].any() and organs[box][component].any():
            count += 1
    return count


def real_data(shared: Path) -> dict[str, Any]:
    from petseg.io import load_study
    from petseg.io.rtstruct import read_rtstruct

    out: dict[str, Any] = {}
    names = json.loads((shared / "ct-organs" / "example_seg_labels.json").read_text())
    liver_code = int(next(k for k, v in names.items() if v == "liver"))
    seg, _ = read_nifti(shared / "ct-organs" / "example_seg.nii.gz")
    rng = np.random.default_rng(5)
    for name in ("example_ct_sm", "example_ct"):
        ct, geometry = read_nifti(shared / "ct-organs" / f"{name}.nii.gz")
        liver = np.zeros(ct.shape, bool)
        liver[ct.shape[0] - seg.shape[0] :] = seg == liver_code  # sm = last 30 slices
        flat = (6.0 * (1 + 0.1 * rng.standard_normal(ct.shape))).astype(np.float32)
        found = find_liver_ct(ct, geometry)
        placed = place_in_organ(flat, geometry, found.mask)
        sphere = sphere_mask(geometry, placed.centre_mm, placed.radius_mm)
        out[name] = {
            "centre_in_totalsegmentator_liver": bool(liver[placed.centre_index]),
            "sphere_share_in_liver": float(liver[sphere].mean()),
            "found_share_in_liver": float(liver[found.mask].mean()),
            "liver_share_found": float(found.mask[liver].mean()),
        }
    folder = shared / "lu177-dotatate-spect" / "SCAN_001"
    study = load_study(folder / "spect")
    lesions = read_rtstruct(folder / "rtstruct.dcm", study.geometry)
    auto = place_reference(study.pet, study.geometry)
    distances = {
        name: float(
            ndimage.distance_transform_edt(~mask, sampling=study.geometry.spacing)[auto.mask].min()
        )
        for name, mask in lesions.items()
    }
    out["spect"] = {**auto.to_dict(), "distance_to_lesions_mm": distances}
    refused = {}
    for case in sorted(p for p in (shared / "sts-pet").iterdir() if p.is_dir()):
        sts = load_study(case)
        try:
            place_reference(sts.pet, sts.geometry, ct=sts.ct)
            refused[case.name] = None
        except NoReferenceError as err:
            refused[case.name] = str(err)
    out["sts_refused"] = refused
    return out


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {"n": len(rows)}
    for source in SOURCES:
        placed = [r[source] for r in rows if "refused" not in r[source]]
        ok = [p for p in placed if p["inside_liver"] and p["lesion_voxels"] == 0]
        errors = np.array([p["threshold_rel_error"] for p in placed])
        summary[source] = {
            "placed": len(placed),
            "inside_liver_and_lesion_free": len(ok),
            "share_ok": len(ok) / len(rows),
            "threshold_within_5_percent": int(np.sum(np.abs(errors) <= 0.05)),
            "threshold_rel_error_mean": float(errors.mean()) if errors.size else None,
            "threshold_rel_error_sd": float(errors.std(ddof=1)) if errors.size > 1 else None,
            "threshold_rel_error_max_abs": float(np.abs(errors).max()) if errors.size else None,
            "confidence_median": float(np.median([p["confidence"] for p in placed])),
            "switched_to_spleen": sum(1 for p in placed if p["switch"]),
            "seconds_median": float(np.median([p["seconds"] for p in placed])),
        }
    for name in ("corrected", "automatic"):
        dice = np.array([r[f"{name}_pixel_dice"] for r in rows], dtype=float)
        summary[name] = {
            "pixel_dice_mean": float(np.nanmean(dice)),
            "pixel_dice_median": float(np.nanmedian(dice)),
            "fp_in_physiological_organs": int(
                sum(r[f"{name}_fp_in_physiological_organs"] for r in rows)
            ),
        }
    difference = np.array(
        [r["automatic_pixel_dice"] - r["corrected_pixel_dice"] for r in rows], dtype=float
    )
    summary["dice_automatic_minus_corrected"] = {
        "mean": float(np.nanmean(difference)),
        "min": float(np.nanmin(difference)),
        "cases_below_minus_0.02": int(np.sum(difference < -0.02)),
    }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("phantoms", type=Path, help="a dataset made by petseg phantom")
    parser.add_argument("--out", type=Path, required=True, help="results JSON")
    parser.add_argument("--shared", type=Path, help="../shared/data, for the real-data checks")
    args = parser.parse_args()
    cases = sorted(p for p in args.phantoms.iterdir() if (p / "truth.json").is_file())
    rows = [phantom_case(case) for case in progress(cases, desc="phantoms", unit="case")]
    results = {
        "phantoms": str(args.phantoms),
        "summary": summarise(rows),
        "cases": rows,
        "real_data": real_data(args.shared) if args.shared else None,
    }
    args.out.write_text(json.dumps(to_jsonable(results), indent=2, allow_nan=False) + "\n")
    print(json.dumps(to_jsonable(results["summary"]), indent=2))
    if results["real_data"]:
        real = results["real_data"]
        print({k: real[k] for k in ("example_ct_sm", "example_ct")})
        print("SPECT distance to lesions (mm):", real["spect"]["distance_to_lesions_mm"])
        refused = sum(1 for v in real["sts_refused"].values() if v)
        print(f"sarcoma studies refused: {refused} of {len(real['sts_refused'])}")


if __name__ == "__main__":
    main()
