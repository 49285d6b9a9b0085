"""Predictions made with nnU-Net (here or elsewhere) turned into petseg's outputs.

Two kinds of input:

* probabilities: nnU-Net's ``--save_probabilities`` files, ``<case>.npz`` (key
  ``probabilities``, ``(classes, Z, Y, X)`` in nnU-Net's reader order) with the ``<case>.pkl``
  properties beside it. Several files (one per fold or model) form petseg's ensemble, as
  for its own engines (:func:`petseg.engine.ensemble_prediction`): the mean of their
  lesion probabilities (1 − background), p > 0.5, and the folds' uncertainty.
* labels: a label NIfTI written by nnU-Net (``<case>.nii.gz``), any label > 0 is lesion.

Either way the lesion mask goes through petseg's post-processing (body contour,
components < 0.1 mL) and becomes a :class:`~petseg.result.SegmentationResult`.

Array order: nnU-Net's ``SimpleITKIO`` and ``NibabelIO`` both return NIfTI voxel arrays as
``(k, j, i)``, which is petseg's ``(Z, Y, X)``; the ``.pkl`` properties are checked against
the study grid (spacing, and origin/direction or affine) before anything is used.
``NibabelIOWithReorient`` outputs are refused (their arrays are reoriented).

The ``.pkl`` is read with a restricted unpickler that only rebuilds builtins and NumPy arrays,
so a crafted file cannot run code.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from petseg.lesions import DEFAULT_CONNECTIVITY, MIN_LESION_VOLUME_ML
from petseg.result import SegmentationResult, segmentation_from_mask
from petseg.study import Geometry, Study

if TYPE_CHECKING:
    from petseg.engine.protocol import Prediction

__all__ = [
    "check_properties",
    "import_nnunet_predictions",
    "read_nnunet_labels",
    "read_nnunet_probabilities",
    "read_properties",
    "segmentation_from_probabilities",
]

#: Grid agreement tolerance between the .pkl properties and the study (mm).
GRID_TOLERANCE_MM = 1e-3
_SAFE_GLOBALS = (
    {
        ("builtins", name)
        for name in ("tuple", "list", "dict", "set", "frozenset", "slice", "complex")
    }
    | {
        (module, name)
        for module in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")
    }
    | {("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict")}
)


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name} from a properties .pkl (only builtins and NumPy "
            "arrays are allowed)"
        )


def read_properties(path: str | Path) -> dict[str, Any]:
    """nnU-Net's ``<case>.pkl`` properties, loaded without running code.

    Parameters
    ----------
    path : path
        The ``.pkl`` file nnU-Net writes beside a probability ``.npz``.

    Returns
    -------
    dict
        The properties (``spacing``, ``sitk_stuff`` or ``nibabel_stuff``, ...).

    Raises
    ------
    ValueError
        The file holds anything but builtins and NumPy arrays, or is not a dict.
    """
    data = Path(path).read_bytes()
    try:
        properties = _SafeUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError) as err:
        raise ValueError(f"{path} is not an nnU-Net properties file: {err}") from err
    if not isinstance(properties, dict):
        raise ValueError(
            f"{path} holds a {type(properties).__name__}, not nnU-Net's properties dict"
        )
    return properties


def check_properties(properties: Mapping[str, Any], geometry: Geometry, source: str) -> None:
    """Raise ValueError unless nnU-Net's properties describe ``geometry`` (the PET grid).

    Parameters
    ----------
    properties : mapping
        nnU-Net's properties of one case (:func:`read_properties`).
    geometry : Geometry
        The study's PET grid.
    source : str
        Names the properties in error messages (their file).

    Raises
    ------
    ValueError
        Spacing, origin or direction (or the NIfTI affine) differ from ``geometry`` by
        more than :data:`GRID_TOLERANCE_MM`, or the arrays were reoriented by nnU-Net.
    """
    if "nibabel_stuff" in properties and "reoriented_affine" in properties["nibabel_stuff"]:
        raise ValueError(
            f"{source} was read by nnU-Net's NibabelIOWithReorient (reoriented arrays); export "
            "the prediction as a label NIfTI instead and import that"
        )
    spacing = properties.get("spacing")
    if spacing is not None and not np.allclose(spacing, geometry.spacing, atol=GRID_TOLERANCE_MM):
        raise ValueError(
            f"{source}: spacing {tuple(spacing)} mm (z, y, x) differs from the PET grid's "
            f"{geometry.spacing}; the prediction belongs to another image"
        )
    unit = geometry.affine[:3, :3] / np.linalg.norm(geometry.affine[:3, :3], axis=0)
    sitk = properties.get("sitk_stuff")
    if sitk is not None:
        direction = np.asarray(sitk["direction"], dtype=float).reshape(3, 3)
        # ITK's direction columns are its (i, j, k) axes; petseg's affine columns are (k, j, i).
        if not np.allclose(
            sitk["origin"], geometry.origin, atol=GRID_TOLERANCE_MM
        ) or not np.allclose(direction, unit[:, ::-1], atol=1e-4):
            raise ValueError(
                f"{source}: origin {tuple(sitk['origin'])} / direction differ from the PET grid "
                f"(origin {geometry.origin} mm LPS); the prediction belongs to another image"
            )
    nib = properties.get("nibabel_stuff")
    if nib is not None:
        from petseg.io.nifti import lps_kji_to_ras_ijk

        if not np.allclose(
            nib["original_affine"], lps_kji_to_ras_ijk(geometry.affine), atol=GRID_TOLERANCE_MM
        ):
            raise ValueError(
                f"{source}: the NIfTI affine differs from the PET grid's; the prediction "
                "belongs to another image"
            )


def read_nnunet_probabilities(
    npz: str | Path, geometry: Geometry, *, properties: str | Path | None = None
) -> NDArray[np.float32]:
    """Read ``probabilities`` (classes, Z, Y, X) from an nnU-Net ``.npz`` and check its grid.

    Parameters
    ----------
    npz : path
        The ``.npz`` nnU-Net writes with ``--save_probabilities``.
    geometry : Geometry
        The study's PET grid, ``(Z, Y, X)``.
    properties : path, optional
        nnU-Net's ``.pkl`` properties; default: the ``.pkl`` beside the ``.npz`` when one
        exists. Without one only the shape is checked.

    Returns
    -------
    (classes, Z, Y, X) float32 ndarray
        Softmax probabilities, background first.
    """
    npz = Path(npz)
    with np.load(npz, allow_pickle=False) as data:
        if "probabilities" not in data:
            raise ValueError(
                f"{npz} has no 'probabilities' array (keys {list(data)}); give the .npz that "
                "nnU-Net writes with --save_probabilities"
            )
        probabilities = np.asarray(data["probabilities"], dtype=np.float32)
    if probabilities.ndim != 4 or probabilities.shape[1:] != geometry.shape:
        raise ValueError(
            f"{npz}: probabilities of shape {probabilities.shape}, expected (classes, "
            f"{', '.join(map(str, geometry.shape))}) on the PET grid"
        )
    pkl = Path(properties) if properties is not None else npz.with_suffix(".pkl")
    if properties is not None or pkl.is_file():
        check_properties(read_properties(pkl), geometry, str(pkl))
    return probabilities


def read_nnunet_labels(path: str | Path, geometry: Geometry) -> NDArray[np.bool_]:
    """Lesion mask (label > 0) of an nnU-Net label NIfTI on the PET grid.

    Parameters
    ----------
    path : path
        The label ``.nii.gz`` nnU-Net wrote.
    geometry : Geometry
        The study's PET grid; the file must be on it.

    Returns
    -------
    (Z, Y, X) bool ndarray
    """
    from petseg.io.nifti import read_nifti

    labels, grid = read_nifti(path)
    if not grid.same_grid(geometry):
        raise ValueError(
            f"{path} is not on the PET grid (shape {grid.shape} vs {geometry.shape}, or another "
            "position); give the prediction of this study"
        )
    return np.asarray(labels) > 0


def segmentation_from_probabilities(
    study: Study,
    probabilities: Sequence[NDArray[np.floating]],
    model: Mapping[str, Any],
    *,
    min_volume_ml: float = MIN_LESION_VOLUME_ML,
    connectivity: int = DEFAULT_CONNECTIVITY,
    body: bool = True,
) -> Prediction:
    """petseg's ensemble of nnU-Net softmax maps, as for its own engines.

    Each map's lesion probability is 1 − its background probability; the maps then go
    through :func:`petseg.engine.ensemble_prediction` (mean, p > 0.5 — the argmax for two
    classes —, post-processing, per-lesion uncertainty for two or more maps).

    Parameters
    ----------
    study : Study
        The study predicted (its PET grid is the maps' grid).
    probabilities : sequence of (classes, Z, Y, X) float ndarray
        nnU-Net softmax maps, one per fold or model.
    model : mapping
        Provenance written to ``report.json["model"]``.
    min_volume_ml, connectivity, body : float, int, bool
        The post-processing (:class:`petseg.engine.PostProcessing`).
    """
    from petseg.engine.ensemble import ensemble_prediction
    from petseg.engine.protocol import PostProcessing

    if not probabilities:
        raise ValueError("give at least one probability map")
    for p in probabilities:
        if np.shape(p)[1:] != study.geometry.shape:
            raise ValueError(
                f"probabilities {np.shape(p)[1:]} are not on the PET grid {study.geometry.shape}"
            )
    maps = ((k, 1.0 - np.asarray(p[0], dtype=np.float32)) for k, p in enumerate(probabilities))
    return ensemble_prediction(
        study,
        maps,
        range(len(probabilities)),
        model,
        parameters={"decision": "p(lesion) = 1 - p(background) > 0.5 (argmax of two classes)"},
        post=PostProcessing(min_volume_ml, connectivity, body),
    )


def import_nnunet_predictions(
    study: Study,
    predictions: Sequence[str | Path],
    out: str | Path,
    *,
    force: bool = False,
    min_volume_ml: float = MIN_LESION_VOLUME_ML,
    connectivity: int = DEFAULT_CONNECTIVITY,
    body: bool = True,
) -> SegmentationResult:
    """Turn nnU-Net outputs of one study into petseg's case folder (lesions, report, MIP,
    RTSTRUCT when the study came from DICOM; ``uncertainty.nii.gz`` and the per-lesion
    uncertainty columns for two or more probability files).

    Parameters
    ----------
    study : Study
        The study that was predicted (PET grid = nnU-Net's input grid).
    predictions : sequence of path
        ``.npz`` probability files (averaged; ``.pkl`` beside each is checked) or exactly
        one label ``.nii.gz``.
    out : path
        Case folder to write; must not exist unless ``force``.
    force : bool
        Replace an existing ``out``.
    min_volume_ml, connectivity, body : float, int, bool
        The post-processing (:class:`petseg.engine.PostProcessing`).

    Returns
    -------
    SegmentationResult
    """
    from petseg.engine.folders import prediction_files
    from petseg.report import write_segmentation_outputs

    extras = None
    paths = [Path(p) for p in predictions]
    if not paths:
        raise ValueError("give at least one nnU-Net prediction (.npz or .nii.gz)")
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist")
    kinds = {
        "npz" if p.suffix == ".npz" else "nifti" if p.name.endswith((".nii.gz", ".nii")) else "?"
        for p in paths
    }
    if kinds == {"npz"}:
        maps = [read_nnunet_probabilities(p, study.geometry) for p in paths]
        model = {
            "engine": "nnunet (imported probabilities)",
            "files": [str(p.resolve()) for p in paths],
        }
        prediction = segmentation_from_probabilities(
            study, maps, model, min_volume_ml=min_volume_ml, connectivity=connectivity, body=body
        )
        result = prediction.result
        extras = prediction_files(prediction, study, save_probabilities=False)
    elif kinds == {"nifti"} and len(paths) == 1:
        mask = read_nnunet_labels(paths[0], study.geometry)
        model = {"engine": "nnunet (imported labels)", "files": [str(paths[0].resolve())]}
        result = segmentation_from_mask(
            study,
            mask,
            model,
            min_volume_ml=min_volume_ml,
            connectivity=connectivity,
            body=body,
            parameters={"decision": "label > 0"},
        )
    else:
        raise ValueError(
            f"give .npz probability files (one or more) or one label .nii.gz, got {[p.name for p in paths]}"
        )
    write_segmentation_outputs(out, study, result, force=force, extras=extras, inputs=paths)
    return result
