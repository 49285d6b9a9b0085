"""Organ maps from files: TotalSegmentator output, DICOM SEG, any label map with names.

:func:`read_organ_map` reads, by what ``path`` is:

* a **NIfTI label map** (TotalSegmentator's multi-label output, or any other). Class
  names come from, in this order: ``names`` (a JSON file, or ``"totalsegmentator"``
  for TotalSegmentator's ``total`` task numbering, v2); a JSON beside the image
  (``<name>.json``, ``<name>_labels.json``, or a petseg phantom's ``truth.json`` with
  its ``organ_legend``); the label table TotalSegmentator writes into the NIfTI header
  extension. A label map with no names is refused: its numbers mean nothing by themselves.
* a **folder of per-class masks** as TotalSegmentator writes them (``liver.nii.gz``,
  ``kidney_left.nii.gz``, …; the file name is the class name);
* a **DICOM SEG** file (``.dcm``): each segment is matched by its label, else by its
  Segmented Property Type code (SNOMED CT) and laterality modifier.

Names are mapped to petseg's organ vocabulary (:func:`petseg.organs.vocabulary_name`);
classes outside it are dropped and listed in the map's provenance. The map is then
resampled onto the PET grid by patient coordinates, nearest neighbour. Input files are
only read, never changed.

:func:`totalsegmentator_organ_map` runs TotalSegmentator (optional extra
``petseg[organs]``) on a study's CT and caches its output.
"""

from __future__ import annotations

import hashlib
import json
import os
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from petseg.io.nifti import read_nifti, read_nifti_geometry, write_nifti
from petseg.organs import (
    OrganMap,
    expand_organ,
    organ_map_from_labels,
    organ_map_on_grid,
    vocabulary_name,
)
from petseg.study import Geometry, Study
from petseg.tracers import Radiopharmaceutical, radiopharmaceutical_from_dataset

__all__ = [
    "RUN_TOTALSEGMENTATOR",
    "TOTALSEGMENTATOR_CACHE",
    "TOTALSEGMENTATOR_TOTAL_CLASSES",
    "TotalSegmentatorError",
    "check_totalsegmentator",
    "organ_map_for_study",
    "read_organ_map",
    "read_radiopharmaceutical",
    "totalsegmentator_organ_map",
    "totalsegmentator_rois",
]

#: TotalSegmentator's ``total`` task (v2) class numbering: label → class name
#: (TotalSegmentator ``map_to_binary.class_map["total"]``, Apache License 2.0).
TOTALSEGMENTATOR_TOTAL_CLASSES: dict[int, str] = dict(
    enumerate(
        (
            "spleen kidney_right kidney_left gallbladder liver stomach pancreas "
            "adrenal_gland_right adrenal_gland_left lung_upper_lobe_left lung_lower_lobe_left "
            "lung_upper_lobe_right lung_middle_lobe_right lung_lower_lobe_right esophagus "
            "trachea thyroid_gland small_bowel duodenum colon urinary_bladder prostate "
            "kidney_cyst_left kidney_cyst_right sacrum vertebrae_S1 vertebrae_L5 vertebrae_L4 "
            "vertebrae_L3 vertebrae_L2 vertebrae_L1 vertebrae_T12 vertebrae_T11 vertebrae_T10 "
            "vertebrae_T9 vertebrae_T8 vertebrae_T7 vertebrae_T6 vertebrae_T5 vertebrae_T4 "
            "vertebrae_T3 vertebrae_T2 vertebrae_T1 vertebrae_C7 vertebrae_C6 vertebrae_C5 "
            "vertebrae_C4 vertebrae_C3 vertebrae_C2 vertebrae_C1 heart aorta pulmonary_vein "
            "brachiocephalic_trunk subclavian_artery_right subclavian_artery_left "
            "common_carotid_artery_right common_carotid_artery_left brachiocephalic_vein_left "
            "brachiocephalic_vein_right atrial_appendage_left superior_vena_cava "
            "inferior_vena_cava portal_vein_and_splenic_vein iliac_artery_left "
            "iliac_artery_right iliac_vena_left iliac_vena_right humerus_left humerus_right "
            "scapula_left scapula_right clavicula_left clavicula_right femur_left femur_right "
            "hip_left hip_right spinal_cord gluteus_maximus_left gluteus_maximus_right "
            "gluteus_medius_left gluteus_medius_right gluteus_minimus_left "
            "gluteus_minimus_right autochthon_left autochthon_right iliopsoas_left "
            "iliopsoas_right brain skull "
            + " ".join(f"rib_left_{n}" for n in range(1, 13))
            + " "
            + " ".join(f"rib_right_{n}" for n in range(1, 13))
            + " sternum costal_cartilages"
        ).split(),
        start=1,
    )
)

# SNOMED CT codes of the Segmented Property Type → vocabulary name (laterality from the
# modifier: Left 7771000, Right 24028007).
_SCT_ORGANS: dict[str, str] = {
    "10200004": "liver",
    "78961009": "spleen",
    "64033007": "kidneys",
    "23451007": "adrenal_glands",
    "89837001": "urinary_bladder",
    "12738006": "brain",
    "80891009": "heart",
    "74281007": "myocardium",
    "56329008": "pituitary_gland",
    "45289007": "parotid_glands",
    "54019009": "submandibular_glands",
    "385294005": "salivary_glands",
    "13561001": "lacrimal_glands",
    "69748006": "thyroid_gland",
    "69695003": "stomach",
    "38848004": "duodenum",
    "30315005": "small_bowel",
    "71854001": "colon",
    "15776009": "pancreas",
    "28231008": "gallbladder",
    "32849002": "esophagus",
    "39607008": "lungs",
    "41216001": "prostate",
    "15825003": "aorta",
}
_LATERALITY = {"7771000": "left", "24028007": "right"}
_SIDED = {
    "kidneys": "kidney",
    "adrenal_glands": "adrenal_gland",
    "parotid_glands": "parotid_gland",
    "submandibular_glands": "submandibular_gland",
    "lacrimal_glands": "lacrimal_gland",
    "lungs": "lung",
}

#: Folder of a case folder where the output of a TotalSegmentator run is kept.
TOTALSEGMENTATOR_CACHE = "totalsegmentator"
_TS_TASK = "total"
# Task ids of TotalSegmentator's fast "total" model (3 mm) and of the 6 mm model it crops with.
_TS_FAST_TASK_IDS = (297, 298)


def _nifti_stem(path: Path) -> str:
    return path.name.removesuffix(".gz").removesuffix(".nii")


def _is_nifti(path: Path) -> bool:
    return path.name.endswith((".nii", ".nii.gz"))


def _names_from_json(path: Path) -> dict[int, str]:
    """Label → name from a JSON file: ``{"1": "liver", …}``, ``{"liver": 1, …}`` (nnU-Net's
    ``labels``), a list of names (label = position + 1), or one of those under the key
    ``labels``, ``organ_legend`` (petseg phantom) or ``classes``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"organ names file {path} is not readable JSON: {err}") from err
    if isinstance(data, dict):
        for key in ("labels", "organ_legend", "classes"):
            if isinstance(data.get(key), dict | list):
                data = data[key]
                break
    names: dict[int, str] = {}
    if isinstance(data, list) and all(isinstance(v, str) for v in data):
        names = {n: v for n, v in enumerate(data, start=1)}
    elif isinstance(data, dict) and data:
        try:
            if all(str(k).strip().isdigit() for k in data):
                names = {int(k): str(v) for k, v in data.items()}
            elif all(isinstance(v, int) for v in data.values()):
                names = {int(v): str(k) for k, v in data.items()}
        except (TypeError, ValueError):
            names = {}
    if not names:
        raise ValueError(
            f"organ names file {path} must map labels to names, e.g. "
            '{"1": "spleen", "5": "liver"}, or names to labels, e.g. {"liver": 5}'
        )
    return {k: v for k, v in names.items() if k > 0}


def _names_from_nifti_extension(path: Path) -> dict[int, str]:
    """The label table TotalSegmentator writes into a NIfTI header extension (Caret XML)."""
    import nibabel as nib

    names: dict[int, str] = {}
    header: Any = nib.load(path).header
    for extension in header.extensions:
        content = extension.get_content()
        if not isinstance(content, bytes) or b"<LabelTable>" not in content:
            continue
        try:
            root = ElementTree.fromstring(content.decode("utf-8", errors="replace").strip())
        except ElementTree.ParseError:
            continue
        for label in root.iter("Label"):
            key = label.get("Key", "")
            if key.strip().isdigit() and int(key) > 0 and label.text:
                names[int(key)] = label.text.strip()
    return names


def _label_map_names(
    path: Path, names: str | os.PathLike[str] | None
) -> tuple[dict[int, str], str]:
    if names is not None:
        if str(names).lower() == "totalsegmentator":
            return TOTALSEGMENTATOR_TOTAL_CLASSES, "TotalSegmentator total task numbering (v2)"
        return _names_from_json(Path(names)), str(names)
    stem = _nifti_stem(path)
    for candidate in (path.with_name(f"{stem}.json"), path.with_name(f"{stem}_labels.json")):
        if candidate.is_file():
            return _names_from_json(candidate), str(candidate)
    truth = path.with_name("truth.json")
    if truth.is_file():
        try:
            legend = json.loads(truth.read_text(encoding="utf-8")).get("organ_legend")
        except (OSError, json.JSONDecodeError, AttributeError):
            legend = None
        if isinstance(legend, dict):
            return _names_from_json(truth), str(truth)
    from_header = _names_from_nifti_extension(path)
    if from_header:
        return from_header, f"{path} (NIfTI header label table)"
    raise ValueError(
        f"organ map {path} names no organs: give a JSON of names with --organ-names "
        f'(e.g. {{"5": "liver"}}), put {stem}.json beside it, or pass --organ-names '
        "totalsegmentator for TotalSegmentator's total-task numbering"
    )


def _read_label_map(
    path: Path, names: str | os.PathLike[str] | None
) -> tuple[np.ndarray, Geometry, dict[int, str], dict[str, Any]]:
    class_names, names_source = _label_map_names(path, names)
    labels, geometry = read_nifti(path)
    source = {"reader": "label map", "path": str(path), "names": names_source}
    return np.asarray(labels), geometry, class_names, source


def _read_mask_folder(folder: Path) -> tuple[np.ndarray, Geometry, dict[int, str], dict[str, Any]]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and _is_nifti(p))
    if not files:
        raise ValueError(
            f"organ folder {folder} holds no NIfTI masks (TotalSegmentator writes one "
            "<class>.nii.gz per class)"
        )
    wanted = [p for p in files if vocabulary_name(_nifti_stem(p)) is not None]
    unmapped = [_nifti_stem(p) for p in files if p not in wanted]
    if not wanted:
        raise ValueError(
            f"none of the {len(files)} masks in {folder} is an organ petseg knows "
            f"(e.g. liver.nii.gz, kidney_left.nii.gz); found {[p.name for p in files[:5]]}…"
        )
    geometry = read_nifti_geometry(wanted[0])
    labels = np.zeros(geometry.shape, dtype=np.uint16)
    class_names: dict[int, str] = {}
    for number, mask_path in enumerate(wanted, start=1):
        mask, mask_geometry = read_nifti(mask_path)
        if not mask_geometry.same_grid(geometry, atol_mm=1e-3):
            raise ValueError(
                f"{mask_path} is on another grid (shape {mask_geometry.shape}) than "
                f"{wanted[0].name} (shape {geometry.shape}); the masks of one folder must "
                "share one grid"
            )
        labels[(np.asarray(mask) > 0) & (labels == 0)] = number
        class_names[number] = _nifti_stem(mask_path)
    source = {
        "reader": "folder of per-class masks",
        "path": str(folder),
        "files": [p.name for p in wanted],
        "other_files": unmapped,
    }
    return labels, geometry, class_names, source


def _segment_organ(description: Any) -> str | None:
    name = vocabulary_name(str(description.get("SegmentLabel", "") or ""))
    if name is not None:
        return name
    types = description.get("SegmentedPropertyTypeCodeSequence") or []
    if not types:
        return None
    code = types[0]
    if str(code.get("CodingSchemeDesignator", "")) not in ("SCT", "SRT"):
        return None
    organ = _SCT_ORGANS.get(str(code.get("CodeValue", "")))
    if organ is None:
        return None
    modifiers = list(code.get("SegmentedPropertyTypeModifierCodeSequence") or []) + list(
        description.get("SegmentedPropertyTypeModifierCodeSequence") or []
    )
    for modifier in modifiers:
        side = _LATERALITY.get(str(modifier.get("CodeValue", "")))
        if side is not None and organ in _SIDED:
            return f"{_SIDED[organ]}_{side}"
    return organ


def _read_seg(path: Path) -> tuple[np.ndarray, Geometry, dict[int, str], dict[str, Any]]:
    import highdicom as hd

    try:
        seg = hd.seg.segread(path)
    except Exception as err:  # pydicom/highdicom raise many types for a bad file
        raise ValueError(f"{path} is not a readable DICOM SEG: {err}") from err
    matched: dict[int, str] = {}
    labels_of_segments: dict[int, str] = {}
    for number in seg.segment_numbers:
        description = seg.get_segment_description(number)
        labels_of_segments[number] = str(description.get("SegmentLabel", ""))
        organ = _segment_organ(description)
        if organ is not None:
            matched[number] = organ
    if not matched:
        raise ValueError(
            f"no segment of the DICOM SEG {path} is an organ petseg knows by label or "
            f"SNOMED CT code; its segments: {sorted(labels_of_segments.values())}"
        )
    labels: np.ndarray | None = None
    geometry: Geometry | None = None
    for number in matched:
        try:
            volume = seg.get_volume(segment_numbers=[number], combine_segments=True)
        except (RuntimeError, ValueError) as err:
            raise ValueError(
                f"DICOM SEG {path} is not a regularly spaced 3D volume: {err}"
            ) from err
        array = np.asarray(volume.array)
        if labels is None:
            geometry = Geometry(np.asarray(volume.affine, dtype=np.float64), array.shape)
            labels = np.zeros(array.shape, dtype=np.uint16)
        labels[(array > 0) & (labels == 0)] = number
    assert labels is not None and geometry is not None
    source = {
        "reader": "DICOM SEG",
        "path": str(path),
        "series_instance_uid": str(seg.SeriesInstanceUID),
        "frame_of_reference_uid": str(seg.get("FrameOfReferenceUID", "")),
        "segments": {str(n): labels_of_segments[n] for n in sorted(labels_of_segments)},
    }
    return labels, geometry, matched, source


def read_organ_map(
    path: str | os.PathLike[str],
    pet_geometry: Geometry | None = None,
    *,
    names: str | os.PathLike[str] | None = None,
) -> OrganMap:
    """Read an organ map and put it on the PET grid.

    Parameters
    ----------
    path : path
        A NIfTI label map, a folder of per-class NIfTI masks, or a DICOM SEG file.
    pet_geometry : Geometry, optional
        The PET grid; the map is resampled onto it (nearest neighbour, by patient
        coordinates). None keeps the map's own grid.
    names : path or "totalsegmentator", optional
        Class names of a NIfTI label map (see the module docstring).

    Returns
    -------
    OrganMap
        Named in petseg's vocabulary; on ``pet_geometry`` when given.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Unreadable file, no organ names, no known organ, or a map that does not overlap
        the PET; the message names the file and the fix.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"organ map {path} does not exist")
    if path.is_dir():
        if names is not None:
            raise ValueError(
                f"--organ-names applies to a label map; {path} is a folder of per-class masks "
                "named by their files"
            )
        labels, geometry, class_names, source = _read_mask_folder(path)
    elif _is_nifti(path):
        labels, geometry, class_names, source = _read_label_map(path, names)
    else:
        if names is not None:
            raise ValueError(f"--organ-names applies to a NIfTI label map, not to {path}")
        labels, geometry, class_names, source = _read_seg(path)
    organ_map = organ_map_from_labels(labels, geometry, class_names, source=source)
    if not organ_map.names:
        known = sorted({n for n in class_names.values() if vocabulary_name(n) is not None})
        raise ValueError(
            f"organ map {path} holds no voxel of an organ petseg knows"
            + (
                f" (its classes {known[:12]} are all empty)"
                if known
                else f"; its classes: {sorted(set(class_names.values()))[:12]}"
            )
        )
    if pet_geometry is not None:
        organ_map = organ_map_on_grid(organ_map, pet_geometry)
        if not organ_map.names:
            raise ValueError(
                f"no organ of the organ map {path} lies inside the PET's field of view; give "
                "the organ map of this study's CT"
            )
    return organ_map


def read_radiopharmaceutical(study: Study) -> Radiopharmaceutical | None:
    """The Radiopharmaceutical Information of a DICOM study's first PET file (None for NIfTI).

    Parameters
    ----------
    study : Study
        A study read by :func:`petseg.io.load_study`.

    Returns
    -------
    Radiopharmaceutical or None
    """
    if study.dicom is None:
        return None
    return radiopharmaceutical_from_dataset(study.dicom.first)


class TotalSegmentatorError(ValueError):
    """TotalSegmentator cannot run here (not installed, no weights, no CT)."""


def totalsegmentator_rois(organs: Sequence[str]) -> list[str]:
    """TotalSegmentator ``total`` classes that make up ``organs`` (vocabulary names).

    Organs the ``total`` task does not segment (pituitary, salivary and lacrimal glands)
    have no class and are left out.

    Parameters
    ----------
    organs : sequence of str
        Vocabulary or group names.

    Returns
    -------
    list of str
        TotalSegmentator class names, in its own order.
    """
    wanted: set[str] = set()
    for name in organs:
        wanted |= expand_organ(name)
    return [
        name for name in TOTALSEGMENTATOR_TOTAL_CLASSES.values() if vocabulary_name(name) in wanted
    ]


def _totalsegmentator_weights() -> tuple[Path, list[str]]:
    """TotalSegmentator's weights folder and the model folders missing from it."""
    try:
        from totalsegmentator.config import get_weights_dir
        from totalsegmentator.map_tasks_config import TASK_ID_WEIGHTS_CONFIGS
    except ImportError as err:
        raise TotalSegmentatorError(
            "--organs totalsegmentator needs TotalSegmentator: pip install 'petseg[organs]' "
            f"(with -c constraints.txt to keep torch), or give an organ map file ({err})"
        ) from err
    weights = Path(get_weights_dir())
    folders = [str(TASK_ID_WEIGHTS_CONFIGS[task]["foldername"]) for task in _TS_FAST_TASK_IDS]
    return weights, [name for name in folders if not (weights / name).is_dir()]


def check_totalsegmentator() -> Path:
    """Raise TotalSegmentatorError with the offline fix unless TotalSegmentator can run.

    Nothing is downloaded: TotalSegmentator fetches missing weights from the internet, so
    petseg refuses to call it until they are in place.

    Returns
    -------
    Path
        TotalSegmentator's weights folder.
    """
    weights, missing = _totalsegmentator_weights()
    if missing:
        raise TotalSegmentatorError(
            f"TotalSegmentator's weights ({', '.join(missing)}) are not in {weights}: on a "
            "computer with internet run `totalseg_download_weights -t total_fast`, then copy "
            "its weights folder here and set TOTALSEG_WEIGHTS_PATH to it (or TOTALSEG_HOME_DIR "
            "to the folder holding nnunet/results), or unpack the release zips with "
            "`totalseg_import_weights -i FILE.zip`"
        )
    return weights


def _ct_digest(study: Study) -> str:
    assert study.ct is not None
    digest = hashlib.sha256(np.ascontiguousarray(study.ct, dtype=np.float32).tobytes())
    digest.update(np.round(study.geometry.affine, 6).tobytes())
    return digest.hexdigest()


def _cached(cache: Path, digest: str, rois: Sequence[str]) -> Path | None:
    record = cache / "request.json"
    image = cache / "organs.nii.gz"
    if not (record.is_file() and image.is_file()):
        return None
    try:
        request = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if request.get("ct_sha256") != digest or not set(rois) <= set(request.get("roi_subset", [])):
        return None
    return image


def totalsegmentator_organ_map(
    study: Study,
    organs: Sequence[str],
    cache: str | os.PathLike[str],
    *,
    device: str | None = None,
) -> OrganMap:
    """Run TotalSegmentator on the study's CT (or reuse its cached output) → OrganMap.

    TotalSegmentator's fast ``total`` model (3 mm) segments only the classes that make up
    ``organs`` (its ``roi_subset``), on the CT as resampled onto the PET grid, so its
    output lies on the PET grid. ``cache/organs.nii.gz`` and ``cache/request.json`` (CT
    checksum, classes, TotalSegmentator version) are reused when the CT and the classes
    asked for are the same or fewer.

    Parameters
    ----------
    study : Study
        Must have a CT.
    organs : sequence of str
        Vocabulary names the map must cover (the tracer profile's organs, liver, spleen).
    cache : path
        Folder for TotalSegmentator's output (``<case folder>/totalsegmentator``).
    device : str, optional
        TotalSegmentator's device ("gpu", "cpu"); default "gpu" when torch sees CUDA.

    Returns
    -------
    OrganMap
        On the PET grid, its provenance naming TotalSegmentator and the cache.

    Raises
    ------
    TotalSegmentatorError
        No CT, TotalSegmentator not installed, or its weights missing (the message says
        how to provide them offline).
    """
    if study.ct is None:
        raise TotalSegmentatorError(
            f"--organs totalsegmentator needs the study's CT and {study.patient_id!r} has "
            "none: give the CT (--ct CT.nii.gz, or the DICOM folder with the CT series) or "
            "an organ map file (--organs PATH)"
        )
    rois = totalsegmentator_rois(organs)
    cache = Path(cache)
    digest = _ct_digest(study)
    image = _cached(cache, digest, rois)
    if image is None:
        image = _run_totalsegmentator(study, rois, cache, digest, device)
    organ_map = read_organ_map(image, study.geometry, names="totalsegmentator")
    return OrganMap(
        labels=organ_map.labels,
        names=organ_map.names,
        geometry=organ_map.geometry,
        source={
            **organ_map.source,
            "reader": "TotalSegmentator run",
            "request": json.loads((cache / "request.json").read_text(encoding="utf-8")),
        },
    )


def _run_totalsegmentator(
    study: Study, rois: Sequence[str], cache: Path, digest: str, device: str | None
) -> Path:
    from petseg.io.atomic import atomic_dir, write_json_atomic

    check_totalsegmentator()
    import importlib.metadata

    import torch
    from totalsegmentator.python_api import totalsegmentator

    if device is None:
        device = "gpu" if torch.cuda.is_available() else "cpu"
    with atomic_dir(cache, force=True) as tmp:
        ct_path = tmp / "ct_on_pet_grid.nii.gz"
        write_nifti(ct_path, study.ct, study.geometry)  # type: ignore[arg-type]
        totalsegmentator(
            ct_path,
            tmp / "organs.nii.gz",
            ml=True,
            fast=True,
            task=_TS_TASK,
            roi_subset=list(rois),
            device=device,
            quiet=True,
        )
        ct_path.unlink()
        write_json_atomic(
            tmp / "request.json",
            {
                "ct_sha256": digest,
                "task": _TS_TASK,
                "fast": True,
                "roi_subset": list(rois),
                "device": device,
                "totalsegmentator_version": importlib.metadata.version("TotalSegmentator"),
            },
        )
    return cache / "organs.nii.gz"


#: ``--organs`` value that runs TotalSegmentator instead of reading a file.
RUN_TOTALSEGMENTATOR = "totalsegmentator"


def organ_map_for_study(
    spec: str | os.PathLike[str],
    study: Study,
    *,
    organs: Sequence[str],
    cache: str | os.PathLike[str],
    names: str | os.PathLike[str] | None = None,
) -> OrganMap:
    """The organ map ``--organs`` names, on the study's PET grid.

    Parameters
    ----------
    spec : path or "totalsegmentator"
        An organ-map file or folder (:func:`read_organ_map`), or ``"totalsegmentator"`` to
        run it on the study's CT (:func:`totalsegmentator_organ_map`).
    study : Study
        The study whose PET grid the map is put on (and whose CT is segmented).
    organs : sequence of str
        Vocabulary names TotalSegmentator must segment (ignored for a file).
    cache : path
        TotalSegmentator's output folder.
    names : path or "totalsegmentator", optional
        ``--organ-names`` for a NIfTI label map.

    Returns
    -------
    OrganMap
        On the PET grid.
    """
    if str(spec) == RUN_TOTALSEGMENTATOR:
        if names is not None:
            raise ValueError("--organ-names names the labels of an organ-map file, not of a run")
        return totalsegmentator_organ_map(study, organs, cache)
    return read_organ_map(spec, study.geometry, names=names)
