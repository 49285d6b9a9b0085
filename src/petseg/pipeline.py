"""The threshold pipeline of Carlsen et al. 2022, from Study to lesion map.

reference VOI (liver or spleen; given, or placed automatically by :mod:`petseg.autoref`)
→ threshold → voxels above it → body contour and exclusions → connected components →
components < 0.1 mL removed → physiological uptake removed with an organ map and a tracer
profile (:mod:`petseg.organs`) → per-lesion table.
A fixed SUV threshold and the adaptive % of SUVmax rule are offered as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from petseg.autoref import place_reference
from petseg.body import BODY_THRESHOLD_SUV, body_mask
from petseg.checks import check_choice
from petseg.lesions import (
    CONNECTIVITIES,
    DEFAULT_CONNECTIVITY,
    MIN_LESION_VOLUME_ML,
    check_connectivity,
    min_voxels_for_volume,
    patient_stats,
    quantify_lesions,
)
from petseg.organs import OrganMap, PhysiologicalRemoval, remove_organ_uptake
from petseg.postprocess import postprocess
from petseg.reference import DEFAULT_SPHERE_RADIUS_MM, reference_stats, sphere_mask
from petseg.result import SegmentationResult
from petseg.study import Study
from petseg.threshold import (
    DEFAULT_PERCENT_MAX,
    percent_max_mask,
    reference_threshold,
    threshold_mask,
)
from petseg.tracers import TracerChoice

__all__ = [
    "METHODS",
    "SegmentParams",
    "segment_study",
]

METHODS = ("liver", "spleen", "fixed", "percent_max")


def _finite(value: object) -> bool:
    """A real number that is not NaN or infinite (bools are not numbers here)."""
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool)
        and bool(np.isfinite(value))
    )


@dataclass(frozen=True)
class SegmentParams:
    """Parameters of the threshold pipeline (all recorded in ``report.json``).

    Every value is checked when the object is built: NaN, infinite or negative numbers
    are refused, and so are options that do not apply to ``method`` (a ``threshold`` for
    "liver"/"spleen", a ``ref_sphere`` for "fixed").

    Attributes
    ----------
    method : {"liver", "spleen", "fixed", "percent_max"}
        "liver" and "spleen": the reference-VOI threshold; "fixed": the SUV ``threshold``;
        "percent_max": each component above ``threshold`` kept above ``percent_max`` × its
        SUVmax.
    ref_sphere : (4,) tuple of float, optional
        ``(a, b, c, radius_mm)``: centre in LPS mm ``(x, y, z)`` when ``ref_units="mm"``, in
        voxel indices ``(k, j, i)`` when ``ref_units="voxel"``; radius in mm.
    ref_units : {"mm", "voxel"}
        How the sphere's centre is given.
    threshold : float, optional
        SUV in g/mL for "fixed"; the candidate floor for "percent_max" (None there: the
        reference threshold is the floor).
    percent_max : float
        Fraction of SUVmax for "percent_max", in (0, 1).
    connectivity : int
        6, 18 or 26.
    min_volume_ml : float
        Components below this volume (mL) are removed (Carlsen: 0.1 mL).
    body : bool
        Remove segmentation outside the PET body contour.
    body_threshold_suv : float
        SUV (g/mL) used by the body contour.
    """

    method: str = field(
        default="liver",
        metadata={
            "choices": METHODS,
            "help": "liver: 1.5·SUVmean+2·SD of a liver VOI; spleen: 0.67·SUVmean+2·SD of a "
            "spleen VOI; fixed: --threshold SUV; percent_max: per lesion, a fraction of its "
            "SUVmax",
        },
    )
    ref_sphere: tuple[float, float, float, float] | None = field(
        default=None,
        metadata={
            "metavar": "X,Y,Z,R",
            "help": "reference sphere: centre in patient mm (DICOM LPS x,y,z) — or voxel "
            "indices k,j,i with --ref-units voxel — and radius R in mm (a 3 cm sphere is "
            f"R={DEFAULT_SPHERE_RADIUS_MM:g}); default: placed automatically in normal liver",
        },
    )
    ref_units: str = field(
        default="mm",
        metadata={"choices": ("mm", "voxel"), "help": "units of the sphere centre"},
    )
    threshold: float | None = field(
        default=None,
        metadata={"help": "SUV (g/mL) for --method fixed; the candidate floor for percent_max"},
    )
    percent_max: float = field(
        default=DEFAULT_PERCENT_MAX,
        metadata={"help": "fraction of SUVmax for percent_max, in (0, 1)"},
    )
    connectivity: int = field(
        default=DEFAULT_CONNECTIVITY,
        metadata={"choices": CONNECTIVITIES, "help": "3D neighbourhood for lesions"},
    )
    min_volume_ml: float = field(
        default=MIN_LESION_VOLUME_ML,
        metadata={"help": "remove components smaller than this, in mL"},
    )
    body: bool = field(
        default=True, metadata={"help": "remove segmentation outside the PET body contour"}
    )
    body_threshold_suv: float = field(
        default=BODY_THRESHOLD_SUV,
        metadata={"help": "SUV (g/mL) separating body from air for the body contour"},
    )

    def __post_init__(self) -> None:
        check_choice("method", self.method, METHODS)
        check_connectivity(self.connectivity)
        check_choice("ref_units", self.ref_units, ("mm", "voxel"))
        if self.ref_sphere is not None:
            if len(self.ref_sphere) != 4 or not all(_finite(v) for v in self.ref_sphere):
                raise ValueError(
                    f"ref_sphere must be four finite numbers (a, b, c, radius_mm), got "
                    f"{self.ref_sphere}"
                )
            if self.ref_sphere[3] <= 0:
                raise ValueError(
                    f"the reference sphere's radius must be > 0 mm, got {self.ref_sphere[3]}"
                )
            if not self.uses_reference:
                raise ValueError(
                    f"a reference sphere does not apply to method {self.method!r}, whose "
                    "threshold is --threshold; drop it or use --method liver/spleen"
                )
        if self.threshold is not None:
            if not _finite(self.threshold) or self.threshold <= 0:
                raise ValueError(
                    f"threshold must be a positive SUV in g/mL (e.g. 4.0), got {self.threshold}"
                )
            if self.method in ("liver", "spleen"):
                raise ValueError(
                    f"a threshold does not apply to method {self.method!r}, whose threshold "
                    "comes from the reference VOI; drop --threshold, or use --method fixed"
                )
        if self.method == "fixed" and self.threshold is None:
            raise ValueError("method 'fixed' needs a positive SUV threshold (g/mL), e.g. 4.0")
        if not _finite(self.min_volume_ml) or self.min_volume_ml < 0:
            raise ValueError(
                f"min_volume_ml must be a finite volume >= 0 mL (0 keeps every component), "
                f"got {self.min_volume_ml}"
            )
        if not 0 < self.percent_max < 1:
            raise ValueError(f"percent_max must be in (0, 1), got {self.percent_max}")
        if not _finite(self.body_threshold_suv) or self.body_threshold_suv <= 0:
            raise ValueError(
                f"body_threshold_suv must be a positive SUV in g/mL, got {self.body_threshold_suv}"
            )

    @property
    def uses_reference(self) -> bool:
        """True when the threshold comes from a reference VOI."""
        return self.method in ("liver", "spleen") or (
            self.method == "percent_max" and self.threshold is None
        )

    def to_dict(self) -> dict[str, Any]:
        """The parameters under their field names."""
        return asdict(self)


def _given_reference(
    study: Study, params: SegmentParams, reference_mask: NDArray[np.bool_] | None
) -> tuple[NDArray[np.bool_], str] | None:
    """The reference VOI the user gave (mask or sphere) and its description, or None."""
    if reference_mask is not None:
        if params.ref_sphere is not None:
            raise ValueError(
                "give either a reference sphere (--ref-sphere) or a reference mask "
                "(--ref-mask), not both"
            )
        return np.asarray(reference_mask, dtype=bool), "mask"
    if params.ref_sphere is None:
        return None
    a, b, c, radius = params.ref_sphere
    mask = sphere_mask(study.geometry, (a, b, c), radius, units=params.ref_units)  # type: ignore[arg-type]
    unit = "mm" if params.ref_units == "mm" else "voxel index"
    return mask, f"sphere centre ({a}, {b}, {c}) {unit}, radius {radius} mm"


def _reference_organs(organs: OrganMap | None) -> dict[str, NDArray[np.bool_]] | None:
    """The liver and spleen of an organ map (those it has), for the automatic VOI."""
    if organs is None:
        return None
    return {name: organs.mask(name) for name in ("liver", "spleen") if organs.has(name)}


def _check_inputs(
    params: SegmentParams,
    reference_mask: NDArray[np.bool_] | None,
    organs: OrganMap | None,
    tracer: TracerChoice | None,
) -> None:
    if (organs is None) != (tracer is None):
        raise ValueError(
            "removing physiological uptake needs both an organ map (--organs) and a tracer "
            "profile (--tracer); got only the " + ("organ map" if organs is not None else "tracer")
        )
    if reference_mask is not None and not params.uses_reference:
        raise ValueError(
            f"a reference mask does not apply to method {params.method!r}, whose threshold is "
            "given; drop the mask or use method liver/spleen"
        )


def _threshold_of(
    study: Study,
    params: SegmentParams,
    reference_mask: NDArray[np.bool_] | None,
    organs: OrganMap | None,
    body: NDArray[np.bool_] | None,
) -> tuple[float, dict[str, Any] | None, NDArray[np.bool_] | None]:
    """The SUV threshold (g/mL), the reference record and the reference VOI (when used)."""
    if not params.uses_reference:
        if params.threshold is None:  # pragma: no cover - SegmentParams validation prevents it
            raise ValueError(f"method {params.method!r} produced no threshold")
        return params.threshold, None, None
    suv, geometry = study.pet, study.geometry
    organ = "spleen" if params.method == "spleen" else "liver"
    given = _given_reference(study, params, reference_mask)
    automatic = None
    if given is None:
        automatic = place_reference(
            suv, geometry, organ=organ, organ_masks=_reference_organs(organs), ct=study.ct
        )
        mask, organ, description = automatic.mask, automatic.organ, automatic.describe()
    else:
        mask, description = given[0], f"{organ} {given[1]}"
    stats = reference_stats(suv, mask, geometry, description=description, body=body)
    reference: dict[str, Any] = {"organ": organ, **stats.to_dict()}
    if automatic is not None:
        reference["automatic"] = automatic.to_dict()
    return reference_threshold(stats, organ), reference, mask


def _threshold_components(
    study: Study,
    params: SegmentParams,
    threshold: float,
    body: NDArray[np.bool_] | None,
    exclusions: Sequence[NDArray[np.bool_]],
) -> tuple[NDArray[np.int32], int]:
    """Components above ``threshold`` (g/mL) after post-processing, and the minimum size
    (voxels) they were held to."""
    suv, geometry = study.pet, study.geometry
    segmented = threshold_mask(suv, threshold)
    if params.method == "percent_max":
        segmented = percent_max_mask(suv, segmented, params.percent_max, params.connectivity)

    labels = postprocess(
        segmented,
        suv,
        geometry,
        min_volume_ml=params.min_volume_ml,
        connectivity=params.connectivity,
        body=body if body is not None else False,
        exclusions=exclusions,
    )
    min_voxels = (
        min_voxels_for_volume(params.min_volume_ml, geometry.voxel_volume_ml)
        if params.min_volume_ml > 0
        else 0
    )
    return labels, min_voxels


def segment_study(
    study: Study,
    params: SegmentParams | None = None,
    *,
    reference_mask: NDArray[np.bool_] | None = None,
    exclusions: Sequence[NDArray[np.bool_]] = (),
    organs: OrganMap | None = None,
    tracer: TracerChoice | None = None,
) -> SegmentationResult:
    """Segment every lesion of a Study with a threshold rule and quantify them.

    Parameters
    ----------
    study : Study
        The PET (SUV g/mL) on its grid.
    params : SegmentParams, optional
        Pipeline parameters (default: liver reference; without ``ref_sphere`` or
        ``reference_mask`` the VOI is placed automatically,
        :func:`petseg.autoref.place_reference`).
    reference_mask : (Z, Y, X) bool ndarray, optional
        VOI in normal liver/spleen, instead of a sphere.
    exclusions : sequence of (Z, Y, X) bool ndarray
        Masks whose voxels are removed from the result.
    organs : OrganMap, optional
        Organs on the study's grid; with ``tracer``, the components of physiological
        uptake in the profile's organs are removed (:func:`petseg.organs.remove_organ_uptake`)
        and kept in ``result.physiological``.
        Its liver (and spleen, where the VOI goes when the liver holds no lesion-free
        sphere) also places an automatic reference VOI; without an organ map the liver is
        found on the CT, or on the PET when there is no CT.
    tracer : TracerChoice, optional
        The tracer profile; required with ``organs``.

    Returns
    -------
    SegmentationResult
        The lesion map, per-lesion and per-patient quantities, the threshold and the
        parameters that made them.

    Raises
    ------
    petseg.autoref.NoReferenceError
        The VOI is to be placed automatically and no plausible reference organ or no
        lesion-free sphere is found (an organ map without a liver included).
    """
    params = params or SegmentParams()
    _check_inputs(params, reference_mask, organs, tracer)
    suv, geometry = study.pet, study.geometry
    body = (
        body_mask(suv, geometry, threshold_suv=params.body_threshold_suv) if params.body else None
    )
    threshold, reference, mask = _threshold_of(study, params, reference_mask, organs, body)
    labels, min_voxels = _threshold_components(study, params, threshold, body, exclusions)
    physiological: PhysiologicalRemoval | None = None
    extra: dict[str, Any] = {}
    if organs is not None and tracer is not None:
        physiological, extra["organs"] = remove_organ_uptake(
            labels, organs, tracer, suv=suv, connectivity=params.connectivity, min_voxels=min_voxels
        )
        labels = physiological.labels
    lesions = quantify_lesions(suv, labels, geometry)
    return SegmentationResult(
        labels=labels,
        lesions=lesions,
        patient=patient_stats(lesions),
        method=params.method,
        parameters={
            **params.to_dict(),
            "min_voxels": min_voxels,
            "voxel_volume_ml": geometry.voxel_volume_ml,
            "exclusion_masks": len(exclusions),
            "reference_sphere_default_radius_mm": DEFAULT_SPHERE_RADIUS_MM,
        },
        reference=reference,
        threshold_suv=threshold,
        physiological=physiological,
        organ_map=organs,
        extra=extra,
        reference_mask=mask,
    )
