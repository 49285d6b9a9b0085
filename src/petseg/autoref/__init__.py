"""Automatic reference VOI: the liver (or spleen) sphere of Carlsen et al. placed without a user.

:func:`place_reference` chooses where the organ comes from, places the sphere in it by
the fixed-point scheme of :mod:`petseg.autoref.place`, and switches to the spleen when
the liver holds no lesion-free sphere:

1. **organ map** (``organ_masks``, e.g. from TotalSegmentator or a phantom's labels): the
   liver's mask; an organ map without a liver is an error, not a guess elsewhere;
2. **CT** (no organ map): the liver found on the CT by :func:`petseg.autoref.find.find_liver_ct`
   (with the PET's uptake as a check);
3. **PET** (no CT, or the CT finder refused): the liver found on the PET by
   :func:`petseg.autoref.find.find_liver_pet`; a refusal of both is a refusal.

When no lesion-free liver sphere exists (complete metastatic involvement), the sphere
goes into the spleen of the organ map with the spleen's formula (0.67·SUVmean + 2·SD),
and the switch is recorded. Without an organ map there is no spleen to switch to. Every
way of not finding a plausible reference organ raises :class:`NoReferenceError`, a
one-line message that says how to give the VOI by hand (``--ref-sphere``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from petseg.autoref.find import NoOrganError, OrganEstimate, find_liver_ct, find_liver_pet
from petseg.autoref.place import NoPositionError, Placement, place_in_organ
from petseg.checks import check_choice
from petseg.reference import sphere_mask
from petseg.study import Geometry

__all__ = [
    "MANUAL_HINT",
    "AutoReference",
    "NoReferenceError",
    "place_reference",
]

#: How to give the reference VOI by hand; every refusal ends with it.
MANUAL_HINT = (
    "give the reference VOI by hand: --ref-sphere X,Y,Z,R (centre in patient mm, radius "
    "in mm) in normal liver, or in normal spleen with --method spleen"
)


class NoReferenceError(ValueError):
    """No plausible reference organ, or no lesion-free sphere in it: the VOI must be given."""


@dataclass(frozen=True)
class AutoReference:
    """An automatically placed reference VOI and how it was found.

    Attributes
    ----------
    placement : Placement
        The sphere, its statistics, threshold, iterations and confidence.
    mask : (Z, Y, X) bool ndarray
        The sphere on the study's grid.
    source : {"organ map", "CT", "PET"}
        Where the organ came from.
    detection : dict, optional
        How the organ was found without an organ map (None with one).
    switch : dict, optional
        ``{"from": "liver", "to": "spleen", "reason": ...}`` when the liver held no
        lesion-free sphere, else None.
    """

    placement: Placement
    mask: NDArray[np.bool_]
    source: str
    detection: dict[str, Any] | None = None
    switch: dict[str, str] | None = None

    @property
    def organ(self) -> str:
        """The organ the sphere lies in ("liver" or "spleen")."""
        return self.placement.organ

    def describe(self) -> str:
        """One line for the terminal and the report."""
        x, y, z = self.placement.centre_mm
        text = (
            f"automatic {self.organ} sphere ({self.source}) at ({x:.1f}, {y:.1f}, {z:.1f}) mm, "
            f"radius {self.placement.radius_mm:g} mm, confidence {self.placement.confidence:.2f}"
        )
        if self.switch is not None:
            text += f"; switched from the liver: {self.switch['reason']}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record for ``report.json`` (under ``reference.automatic``)."""
        return {
            "method": "automatic",
            "source": self.source,
            **self.placement.to_dict(),
            "organ_detection": self.detection,
            "switch": self.switch,
        }


def _liver_estimate(
    suv: NDArray[np.floating], geometry: Geometry, ct: NDArray[np.floating] | None
) -> OrganEstimate:
    """The liver found on the CT or, when there is no CT or the CT finder refuses, on the
    PET (each with its own checks; the CT's refusal is kept in the record)."""
    refusals = []
    if ct is not None:
        try:
            return find_liver_ct(ct, geometry, suv)
        except NoOrganError as err:
            refusals.append(f"CT: {err}")
    try:
        found = find_liver_pet(suv, geometry)
    except NoOrganError as err:
        refusals.append(
            f"PET: {err}" if ct is not None else f"{err}, looked for on the PET (no CT)"
        )
        raise NoReferenceError(f"{'; '.join(refusals)}; {MANUAL_HINT}") from err
    if refusals:
        found.details["ct_refused"] = refusals[0]
    return found


def place_reference(
    suv: NDArray[np.floating],
    geometry: Geometry,
    *,
    organ: str = "liver",
    organ_masks: Mapping[str, NDArray[np.bool_]] | None = None,
    ct: NDArray[np.floating] | None = None,
    spleen_fallback: bool = True,
) -> AutoReference:
    """Place the reference sphere automatically (module docstring).

    Parameters
    ----------
    suv : (Z, Y, X) float ndarray
        The PET, SUVbw in g/mL.
    geometry : Geometry
        The grid of every array.
    organ : {"liver", "spleen"}
        The organ asked for; "liver" switches to the spleen when the liver holds no
        lesion-free sphere.
    organ_masks : mapping of str to (Z, Y, X) bool ndarray, optional
        An organ map's "liver" and "spleen" on the grid. None finds the liver on ``ct``,
        or on ``suv`` when ``ct`` is None.
    ct : (Z, Y, X) float ndarray, optional
        CT in HU on the grid.
    spleen_fallback : bool
        Switch to the organ map's spleen when the liver holds no lesion-free sphere.

    Returns
    -------
    AutoReference

    Raises
    ------
    NoReferenceError
        No plausible liver in the field of view, an organ map without the organ, or no
        lesion-free sphere in any reference organ; the message says how to give the VOI.
    """
    check_choice("reference organ", organ, ("liver", "spleen"))
    suv = np.asarray(suv)
    if suv.shape != geometry.shape or (ct is not None and np.shape(ct) != geometry.shape):
        raise ValueError(
            f"SUV {suv.shape}{'' if ct is None else f', CT {np.shape(ct)}'} and geometry "
            f"{geometry.shape} must share one shape"
        )
    region, source, detection = _reference_region(suv, geometry, organ, organ_masks, ct)
    placement, switch = _place_with_fallback(
        suv, geometry, region, organ, organ_masks, spleen_fallback
    )
    mask = sphere_mask(geometry, placement.centre_mm, placement.radius_mm)
    return AutoReference(placement, mask, source, detection, switch)


def _reference_region(
    suv: NDArray[np.floating],
    geometry: Geometry,
    organ: str,
    organ_masks: Mapping[str, NDArray[np.bool_]] | None,
    ct: NDArray[np.floating] | None,
) -> tuple[NDArray[np.bool_], str, dict[str, Any] | None]:
    """The organ to place the sphere in, where it came from, and how it was found."""
    if organ_masks is not None:
        masks = {name: np.asarray(m, dtype=bool) for name, m in organ_masks.items()}
        for name, mask in masks.items():
            if mask.shape != geometry.shape:
                raise ValueError(
                    f"organ mask {name!r} has shape {mask.shape}, the PET {geometry.shape}"
                )
        if organ not in masks or not masks[organ].any():
            raise NoReferenceError(
                f"the organ map has no {organ} (it holds {sorted(n for n, m in masks.items() if m.any())}), "
                f"which the automatic reference VOI needs; give an organ map with the {organ}, "
                f"or {MANUAL_HINT}"
            )
        return masks[organ], "organ map", None
    if organ == "spleen":
        raise NoReferenceError(
            "finding the spleen needs an organ map; give one with the spleen, or " + MANUAL_HINT
        )
    estimate = _liver_estimate(suv, geometry, ct)
    return estimate.mask, estimate.source, estimate.details


def _place_with_fallback(
    suv: NDArray[np.floating],
    geometry: Geometry,
    region: NDArray[np.bool_],
    organ: str,
    organ_masks: Mapping[str, NDArray[np.bool_]] | None,
    spleen_fallback: bool,
) -> tuple[Placement, dict[str, str] | None]:
    """The sphere in ``region``, or in the organ map's spleen when the liver holds none."""
    try:
        return place_in_organ(suv, geometry, region, organ=organ), None
    except NoPositionError as err:
        spleen = None if organ_masks is None else organ_masks.get("spleen")
        if organ != "liver" or not spleen_fallback or spleen is None or not np.any(spleen):
            extra = (
                "; no organ map with a spleen to switch to"
                if organ == "liver" and spleen_fallback
                else ""
            )
            raise NoReferenceError(
                f"no lesion-free reference VOI: {err}{extra}; {MANUAL_HINT}"
            ) from err
        try:
            placement = place_in_organ(
                suv, geometry, np.asarray(spleen, dtype=bool), organ="spleen"
            )
        except NoPositionError as spleen_err:
            raise NoReferenceError(
                f"no lesion-free reference VOI: {err}, and {spleen_err}; {MANUAL_HINT}"
            ) from spleen_err
        return placement, {"from": "liver", "to": "spleen", "reason": str(err)}
