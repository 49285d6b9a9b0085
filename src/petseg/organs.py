"""Organ maps on the PET grid and the removal of physiological uptake.

An :class:`OrganMap` is an integer label map on a Study's grid whose labels carry names
from one vocabulary (:data:`ORGANS`), whatever tool made it (TotalSegmentator, a DICOM
SEG, a phantom, any label map with a JSON of names; the readers are in
:mod:`petseg.io.organs`). Paired organs have a name per side and a group name
(``kidneys`` = ``kidney_left`` + ``kidney_right``, :data:`GROUPS`), so a map that only
knows "the kidneys" and one that knows each side answer ``mask("kidneys")`` alike.

:func:`remove_physiological_uptake` is the physician's step of Carlsen et al. 2022
("removing volumes with high physiological uptake (typically bladder, adrenal glands and
kidney)") as a rule on arrays:

* a component with at least :data:`PHYSIOLOGICAL_FRACTION` (one half) of its voxels
  inside the organs of the tracer profile is physiological: removed whole, with its
  spill-over rim outside the organ;
* a component with fewer of its voxels inside is a lesion that touches such an organ:
  its voxels inside the organ are cut off and the rest is kept (what is left below the
  minimum volume goes with the cut part). Dropping it whole would lose a lesion beside
  the kidney; keeping it whole would keep kidney uptake in the tumour volume;
* components outside those organs are kept, including lesions inside organs that have
  no physiological uptake for the tracer (liver metastases with DOTATATE).

Everything removed goes to its own label map with the organ's name, so a reviewer can
restore it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from petseg.checks import did_you_mean
from petseg.lesions import (
    DEFAULT_CONNECTIVITY,
    label_components,
    quantify_lesions,
    relabel_sequential,
)
from petseg.study import Geometry

if TYPE_CHECKING:
    from petseg.tracers import TracerChoice

__all__ = [
    "GROUPS",
    "NAMES",
    "ORGANS",
    "PHYSIOLOGICAL_FRACTION",
    "MissingOrganError",
    "OrganMap",
    "PhysiologicalRemoval",
    "RemovedComponent",
    "expand_organ",
    "organ_map_from_labels",
    "organ_map_on_grid",
    "profile_organ_masks",
    "remove_organ_uptake",
    "remove_physiological_uptake",
    "vocabulary_name",
]

#: The organ vocabulary: name → description. Paired organs have one name per side.
ORGANS: dict[str, str] = {
    "liver": "liver",
    "spleen": "spleen",
    "kidney_left": "left kidney",
    "kidney_right": "right kidney",
    "adrenal_gland_left": "left adrenal gland",
    "adrenal_gland_right": "right adrenal gland",
    "urinary_bladder": "urinary bladder",
    "brain": "brain",
    "heart": "heart (whole: myocardium and blood pool)",
    "myocardium": "myocardium",
    "pituitary_gland": "pituitary gland",
    "parotid_gland_left": "left parotid gland",
    "parotid_gland_right": "right parotid gland",
    "submandibular_gland_left": "left submandibular gland",
    "submandibular_gland_right": "right submandibular gland",
    "lacrimal_gland_left": "left lacrimal gland",
    "lacrimal_gland_right": "right lacrimal gland",
    "thyroid_gland": "thyroid gland",
    "stomach": "stomach",
    "duodenum": "duodenum",
    "small_bowel": "small bowel (jejunum and ileum)",
    "colon": "colon",
    "pancreas": "pancreas",
    "gallbladder": "gallbladder",
    "esophagus": "oesophagus",
    "lung_left": "left lung",
    "lung_right": "right lung",
    "prostate": "prostate",
    "aorta": "aorta",
}

#: Group names: each stands for the union of its members (groups may hold groups). A map
#: may label a group directly (a phantom's "kidneys") or its members (TotalSegmentator).
GROUPS: dict[str, tuple[str, ...]] = {
    "kidneys": ("kidney_left", "kidney_right"),
    "adrenal_glands": ("adrenal_gland_left", "adrenal_gland_right"),
    "parotid_glands": ("parotid_gland_left", "parotid_gland_right"),
    "submandibular_glands": ("submandibular_gland_left", "submandibular_gland_right"),
    "salivary_glands": ("parotid_glands", "submandibular_glands"),
    "lacrimal_glands": ("lacrimal_gland_left", "lacrimal_gland_right"),
    "lungs": ("lung_left", "lung_right"),
    "bowel": ("duodenum", "small_bowel", "colon"),
}

#: Every name an OrganMap label or a tracer profile may use.
NAMES: tuple[str, ...] = (*ORGANS, *GROUPS)

#: The share of a component's voxels inside the profile's organs from which the whole
#: component counts as physiological uptake and is removed (below it, the part inside is cut).
PHYSIOLOGICAL_FRACTION = 0.5

# Other tools' names for vocabulary organs (after normalisation: lower case, runs of
# non-alphanumerics → "_"). TotalSegmentator's ``total`` classes are mostly vocabulary
# names already; its lung lobes map to the lung of their side.
_SYNONYMS: dict[str, str] = {
    # petseg phantom (petseg.phantom.ORGANS)
    "adrenals": "adrenal_glands",
    "bladder": "urinary_bladder",
    "pituitary": "pituitary_gland",
    "thyroid": "thyroid_gland",
    # TotalSegmentator (total, total_mr, head_glands_cavities, heartchambers)
    "lung_upper_lobe_left": "lung_left",
    "lung_lower_lobe_left": "lung_left",
    "lung_upper_lobe_right": "lung_right",
    "lung_middle_lobe_right": "lung_right",
    "lung_lower_lobe_right": "lung_right",
    "heart_myocardium": "myocardium",
    "adrenal_gland": "adrenal_glands",
    "kidney": "kidneys",
    # common spellings
    "left_kidney": "kidney_left",
    "right_kidney": "kidney_right",
    "left_adrenal_gland": "adrenal_gland_left",
    "right_adrenal_gland": "adrenal_gland_right",
    "left_lung": "lung_left",
    "right_lung": "lung_right",
    "left_parotid_gland": "parotid_gland_left",
    "right_parotid_gland": "parotid_gland_right",
    "left_submandibular_gland": "submandibular_gland_left",
    "right_submandibular_gland": "submandibular_gland_right",
    "left_lacrimal_gland": "lacrimal_gland_left",
    "right_lacrimal_gland": "lacrimal_gland_right",
    "hypophysis": "pituitary_gland",
    "oesophagus": "esophagus",
    "gall_bladder": "gallbladder",
    "small_intestine": "small_bowel",
    "large_intestine": "colon",
    "intestine": "bowel",
}


class MissingOrganError(ValueError):
    """An organ that a step needs is not in the organ map."""


def _normalise(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower()).strip("_")


def vocabulary_name(name: str) -> str | None:
    """The vocabulary name for another tool's organ name, or None if it has none.

    Matching ignores case and punctuation (``"Kidney Left"``, ``"kidney-left"`` and
    ``"kidney_left"`` are one name); synonyms cover TotalSegmentator's classes (lung
    lobes → lung of that side) and petseg phantom labels (``adrenals``, ``bladder``).

    Parameters
    ----------
    name : str
        The other tool's class name.

    Returns
    -------
    str or None
        A name of :data:`ORGANS` or :data:`GROUPS`.
    """
    key = _normalise(name)
    if key in ORGANS or key in GROUPS:
        return key
    return _SYNONYMS.get(key)


def expand_organ(name: str) -> frozenset[str]:
    """``name`` and every vocabulary name it contains (groups are expanded recursively).

    Parameters
    ----------
    name : str
        A name of :data:`ORGANS` or :data:`GROUPS`.

    Returns
    -------
    frozenset of str

    Raises
    ------
    ValueError
        ``name`` is not in the vocabulary (with a did-you-mean).
    """
    if name not in ORGANS and name not in GROUPS:
        raise ValueError(
            f"unknown organ {name!r}; the vocabulary is {sorted(NAMES)}{did_you_mean(name, NAMES)}"
        )
    names = {name}
    for member in GROUPS.get(name, ()):
        names |= expand_organ(member)
    return frozenset(names)


@dataclass(frozen=True)
class OrganMap:
    """Organ labels on a Study's grid, named in petseg's vocabulary.

    Attributes
    ----------
    labels : (Z, Y, X) uint8 or uint16 ndarray
        0 is background; each positive label is one organ of ``names``.
    names : dict of int to str
        Label → vocabulary name (:data:`ORGANS` or :data:`GROUPS`), one label per name.
    geometry : Geometry
        The grid of ``labels`` (the PET grid once resampled).
    source : dict
        JSON-ready provenance: the reader, files, the tool's class names that were not
        in the vocabulary, resampling.
    """

    labels: NDArray[np.unsignedinteger]
    names: Mapping[int, str]
    geometry: Geometry
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        labels = np.asarray(self.labels)
        if labels.shape != self.geometry.shape:
            raise ValueError(
                f"organ labels have shape {labels.shape}, their geometry {self.geometry.shape}"
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"organ labels must be integers, got {labels.dtype}")
        for label, name in self.names.items():
            if int(label) <= 0:
                raise ValueError(f"organ label {label} ({name}) must be positive")
            expand_organ(name)
        repeated = sorted(
            {n for n in self.names.values() if list(self.names.values()).count(n) > 1}
        )
        if repeated:
            raise ValueError(f"organ name(s) {repeated} have more than one label")
        object.__setattr__(self, "names", {int(k): str(v) for k, v in self.names.items()})

    @property
    def organs(self) -> tuple[str, ...]:
        """The names of the map's labels, in label order."""
        return tuple(self.names[k] for k in sorted(self.names))

    def _labels_of(self, name: str) -> list[int]:
        wanted = expand_organ(name)
        return [label for label, organ in self.names.items() if organ in wanted]

    def has(self, name: str) -> bool:
        """True when the map labels ``name`` or any organ it contains.

        Parameters
        ----------
        name : str
            A vocabulary or group name.

        Returns
        -------
        bool
        """
        return bool(self._labels_of(name))

    def mask(self, *names: str) -> NDArray[np.bool_]:
        """``(Z, Y, X)`` bool mask of the union of ``names`` (vocabulary or group names).

        Parameters
        ----------
        *names : str
            One or more organ or group names.

        Returns
        -------
        (Z, Y, X) bool ndarray

        Raises
        ------
        MissingOrganError
            One of ``names`` is not in the map (the message lists what the map holds).
        """
        if not names:
            raise ValueError("name at least one organ")
        labels: list[int] = []
        for name in names:
            found = self._labels_of(name)
            if not found:
                raise MissingOrganError(
                    f"the organ map ({self.describe()}) has no {name}; it holds "
                    f"{list(self.organs) or 'no organ'}"
                )
            labels.extend(found)
        return np.isin(self.labels, labels)

    def masks(self, names: Iterable[str]) -> dict[str, NDArray[np.bool_]]:
        """One mask per name; see :meth:`mask`.

        Parameters
        ----------
        names : iterable of str
            Vocabulary or group names, each held by the map.

        Returns
        -------
        dict of str to (Z, Y, X) bool ndarray
        """
        return {name: self.mask(name) for name in names}

    def voxel_counts(self) -> dict[str, int]:
        """Voxels per organ name (labels present in ``names``)."""
        counts = np.bincount(np.asarray(self.labels).ravel().astype(np.int64))
        return {
            name: int(counts[label]) if label < counts.size else 0
            for label, name in sorted(self.names.items())
        }

    def describe(self) -> str:
        """One phrase naming where the map came from (for messages)."""
        return str(self.source.get("path") or self.source.get("reader") or "given as arrays")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready provenance, legend and voxel counts."""
        return {
            **self.source,
            "labels": {str(k): v for k, v in sorted(self.names.items())},
            "voxels": self.voxel_counts(),
        }


def organ_map_from_labels(
    labels: NDArray[np.integer],
    geometry: Geometry,
    class_names: Mapping[int, str],
    *,
    source: Mapping[str, Any] | None = None,
) -> OrganMap:
    """Build an :class:`OrganMap` from a label map named in another tool's terms.

    Parameters
    ----------
    labels : (Z, Y, X) int ndarray
        The tool's labels, 0 background.
    geometry : Geometry
        Grid of ``labels``.
    class_names : mapping of int to str
        The tool's name of each label; names are mapped with :func:`vocabulary_name`.
        Labels whose name is outside the vocabulary (vertebrae, muscles, …) are dropped
        and listed in ``source["unmapped"]``; labels mapping to one name are merged.
    source : mapping, optional
        Provenance kept in ``OrganMap.source``.

    Returns
    -------
    OrganMap
        Labels renumbered 1..K in the order of the vocabulary names' first appearance.
    """
    labels = np.asarray(labels)
    if labels.shape != geometry.shape:
        raise ValueError(f"labels have shape {labels.shape}, the geometry {geometry.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        rounded = np.rint(labels)
        if not np.array_equal(rounded, labels):
            raise ValueError("an organ label map must hold whole numbers, got fractional values")
        labels = rounded.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise ValueError(f"organ labels must be >= 0, got {int(labels.min())}")
    top = int(labels.max()) if labels.size else 0
    lut = np.zeros(max(top, max((int(k) for k in class_names), default=0)) + 1, dtype=np.int64)
    names: dict[int, str] = {}
    number_of: dict[str, int] = {}
    unmapped: list[str] = []
    for value, name in sorted((int(k), v) for k, v in class_names.items()):
        if value <= 0:
            continue
        organ = vocabulary_name(name)
        if organ is None:
            unmapped.append(str(name))
            continue
        if organ not in number_of:
            number_of[organ] = len(number_of) + 1
            names[number_of[organ]] = organ
        lut[value] = number_of[organ]
    dtype = np.uint8 if len(names) < 256 else np.uint16
    return _without_empty(
        OrganMap(
            labels=lut[labels].astype(dtype),
            names=names,
            geometry=geometry,
            source={**(source or {}), "unmapped_classes": unmapped},
        )
    )


def _without_empty(organ_map: OrganMap) -> OrganMap:
    """Drop names whose label has no voxel (listed in ``source["empty"]``)."""
    counts = organ_map.voxel_counts()
    empty = [name for name, count in counts.items() if count == 0]
    if not empty:
        return organ_map
    return OrganMap(
        labels=organ_map.labels,
        names={k: v for k, v in organ_map.names.items() if counts[v] > 0},
        geometry=organ_map.geometry,
        source={
            **organ_map.source,
            "empty": sorted(set(organ_map.source.get("empty", [])) | set(empty)),
        },
    )


def organ_map_on_grid(organ_map: OrganMap, geometry: Geometry) -> OrganMap:
    """Resample an organ map onto another grid by patient coordinates (nearest neighbour).

    Parameters
    ----------
    organ_map : OrganMap
        The map on its own grid (a CT's, for TotalSegmentator).
    geometry : Geometry
        The target grid (the PET's).

    Returns
    -------
    OrganMap
        ``organ_map`` itself when the grids agree; else the resampled map, without the
        organs that fall outside the target grid, its provenance under ``resampled``.

    Raises
    ------
    ValueError
        The map's field of view does not overlap ``geometry`` at all.
    """
    from petseg.io.resample import fov_overlap_fraction, resample_to_grid

    if organ_map.geometry.same_grid(geometry, atol_mm=1e-3):
        return organ_map
    overlap = fov_overlap_fraction(organ_map.geometry, geometry)
    if overlap <= 0.0:
        raise ValueError(
            f"the organ map ({organ_map.describe()}) does not overlap the PET in patient "
            f"space (organ map origin {np.round(organ_map.geometry.origin, 1).tolist()} mm, "
            f"PET origin {np.round(geometry.origin, 1).tolist()} mm); give the organ map of "
            "this study's CT"
        )
    values = resample_to_grid(organ_map.labels, organ_map.geometry, geometry, order=0, fill=0)
    return _without_empty(
        OrganMap(
            labels=values.astype(np.asarray(organ_map.labels).dtype),
            names=organ_map.names,
            geometry=geometry,
            source={
                **organ_map.source,
                "resampled": {
                    "method": "nearest neighbour by patient coordinates",
                    "from_geometry": organ_map.geometry.to_dict(),
                    "pet_fov_fraction_covered": round(overlap, 4),
                },
            },
        )
    )


@dataclass(frozen=True)
class RemovedComponent:
    """One entry of the removed-uptake map.

    Attributes
    ----------
    label : int
        Label in the removed map (1..M).
    organ : str
        The organ (vocabulary name) holding most of its voxels.
    rule : {"inside", "cut"}
        "inside": the whole component lay mostly inside the organs; "cut": the part of a
        kept lesion that lay inside an organ, with fragments left below the minimum volume.
    fraction_in_organs : float
        Share of the original component's voxels inside the organs, in [0, 1].
    """

    label: int
    organ: str
    rule: str
    fraction_in_organs: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, the fraction rounded to 6 decimals."""
        return {**asdict(self), "fraction_in_organs": round(self.fraction_in_organs, 6)}


@dataclass
class PhysiologicalRemoval:
    """Result of :func:`remove_physiological_uptake`.

    Attributes
    ----------
    labels : (Z, Y, X) int32 ndarray
        The lesions kept, 1..N.
    removed : (Z, Y, X) int32 ndarray
        What was removed, 1..M (see ``components``).
    components : list of RemovedComponent
        One per label of ``removed``, in label order.
    organs : tuple of str
        The organs the rule used (those of the profile that the map holds).
    fraction : float
        :data:`PHYSIOLOGICAL_FRACTION` or the value given.
    """

    labels: NDArray[np.int32]
    removed: NDArray[np.int32]
    components: list[RemovedComponent]
    organs: tuple[str, ...]
    fraction: float


def remove_physiological_uptake(
    labels: NDArray[np.integer],
    organs: Mapping[str, NDArray[np.bool_]],
    *,
    fraction: float = PHYSIOLOGICAL_FRACTION,
    connectivity: int = DEFAULT_CONNECTIVITY,
    min_voxels: int = 0,
) -> PhysiologicalRemoval:
    """Remove the components of a lesion map that are physiological uptake in ``organs``.

    Parameters
    ----------
    labels : (Z, Y, X) int ndarray
        Lesion candidates, 0 background, one label per connected component.
    organs : mapping of str to (Z, Y, X) bool ndarray
        Masks of the organs with physiological uptake for the tracer. Where masks
        overlap, the first one names the voxel.
    fraction : float
        A component with at least this share of its voxels inside the organs is removed
        whole; one with a smaller, non-zero share loses its voxels inside them.
    connectivity : int
        6, 18 or 26; the kept part of a cut component is relabelled with it.
    min_voxels : int
        Pieces of a cut component below this size are removed with the cut.

    Returns
    -------
    PhysiologicalRemoval
        Kept lesions relabelled 1..N in raster order; removed voxels labelled 1..M in the
        order of the components they came from.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    labels = np.asarray(labels)
    names = list(organs)
    owner = _organ_owner(labels, organs)
    share, dominant = _organ_shares(labels, owner, len(names))
    whole = share >= fraction
    cut = (share > 0) & ~whole
    removed_voxels = whole[labels] | (cut[labels] & (owner > 0))
    kept = label_components((labels > 0) & ~removed_voxels, connectivity)
    if min_voxels > 1 and cut.any():
        kept = _drop_small_cut_pieces(kept, cut[labels], min_voxels)
    removed_voxels = (labels > 0) & (kept == 0)

    components: list[RemovedComponent] = []
    removed = np.zeros(labels.shape, dtype=np.int32)
    sources = np.unique(labels[removed_voxels])
    group = np.zeros(share.size, dtype=np.int32)
    for source in sources[sources > 0]:
        components.append(
            RemovedComponent(
                label=len(components) + 1,
                organ=names[int(dominant[source])] if names else "",
                rule="inside" if whole[source] else "cut",
                fraction_in_organs=float(share[source]),
            )
        )
        group[source] = len(components)
    removed[removed_voxels] = group[labels[removed_voxels]]
    return PhysiologicalRemoval(
        labels=kept,
        removed=removed,
        components=components,
        organs=tuple(names),
        fraction=float(fraction),
    )


def _organ_owner(
    labels: NDArray[np.integer], organs: Mapping[str, NDArray[np.bool_]]
) -> NDArray[np.unsignedinteger]:
    """Number (1-based, in ``organs`` order) of the first organ holding each voxel; 0 outside."""
    owner = np.zeros(labels.shape, dtype=np.uint8 if len(organs) < 255 else np.uint16)
    for number, name in enumerate(organs, start=1):
        mask = np.asarray(organs[name], dtype=bool)
        if mask.shape != labels.shape:
            raise ValueError(
                f"organ mask {name!r} has shape {mask.shape}, the lesion map {labels.shape}"
            )
        owner[mask & (owner == 0)] = number
    return owner


def _organ_shares(
    labels: NDArray[np.integer], owner: NDArray[np.unsignedinteger], n_organs: int
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Per label: share of its voxels inside the organs (0 for the background) and the
    index of the organ holding most of them."""
    n = int(labels.max()) + 1 if labels.size else 1
    total = np.bincount(labels.ravel(), minlength=n)
    # overlap[label, organ]: voxels of each component in each organ (column 0 = outside)
    overlap = np.bincount(
        labels.ravel().astype(np.int64) * (n_organs + 1) + owner.ravel(),
        minlength=n * (n_organs + 1),
    ).reshape(n, n_organs + 1)
    in_organs = overlap[:, 1:].sum(axis=1)
    share = np.divide(in_organs, total, out=np.zeros(n), where=total > 0)
    share[0] = 0.0
    dominant = overlap[:, 1:].argmax(axis=1) if n_organs else np.zeros(n, dtype=np.int64)
    return share, dominant


def _drop_small_cut_pieces(
    kept: NDArray[np.int32], in_cut: NDArray[np.bool_], min_voxels: int
) -> NDArray[np.int32]:
    """Remove the kept components left from cut ones (``in_cut``) below ``min_voxels``."""
    sizes = np.bincount(kept.ravel())
    from_cut = np.zeros(sizes.size, dtype=bool)
    from_cut[kept[in_cut]] = True
    drop = from_cut & (sizes < min_voxels)
    drop[0] = False
    if drop.any():
        return relabel_sequential(np.where(drop[kept], 0, kept))
    return kept


def profile_organ_masks(
    organ_map: OrganMap, organs: Sequence[str]
) -> tuple[dict[str, NDArray[np.bool_]], list[str]]:
    """Masks of the ``organs`` the map holds, and the names it does not hold.

    A group the map holds in part (one kidney) gives the mask of that part.

    Parameters
    ----------
    organ_map : OrganMap
        The organ map, on the grid the masks are wanted on.
    organs : sequence of str
        Vocabulary or group names (a tracer profile's organs).

    Returns
    -------
    masks : dict of str to (Z, Y, X) bool ndarray
        One mask per name the map holds, in the order of ``organs``.
    missing : list of str
        The names it does not hold.
    """
    masks: dict[str, NDArray[np.bool_]] = {}
    missing: list[str] = []
    for name in organs:
        if organ_map.has(name):
            masks[name] = organ_map.mask(name)
        else:
            missing.append(name)
    return masks, missing


def remove_organ_uptake(
    labels: NDArray[np.integer],
    organ_map: OrganMap,
    tracer: TracerChoice,
    *,
    suv: NDArray[np.floating],
    connectivity: int = DEFAULT_CONNECTIVITY,
    min_voxels: int = 0,
    fraction: float = PHYSIOLOGICAL_FRACTION,
) -> tuple[PhysiologicalRemoval, dict[str, Any]]:
    """Apply a tracer profile with an organ map: :func:`remove_physiological_uptake` on the
    profile's organs that the map holds, and the record ``report.json`` keeps of it.

    Parameters
    ----------
    labels : (Z, Y, X) int ndarray
        Lesion candidates on ``organ_map.geometry``.
    organ_map : OrganMap
        On the lesion map's grid.
    tracer : TracerChoice
        The profile and where it came from.
    suv : (Z, Y, X) ndarray
        SUVbw (g/mL), to measure what is removed.
    connectivity, min_voxels : int
        Component connectivity (6, 18, 26) and the smallest piece kept of a cut
        component, in voxels (:func:`remove_physiological_uptake`).
    fraction : float
        Share of a component inside the organs from which it is removed whole.

    Returns
    -------
    removal : PhysiologicalRemoval
    record : dict
        JSON-ready: organ map provenance, tracer, organs used and missing, the rule's
        fraction, and one row per removed component (organ, rule, volume, SUV).
    """
    if np.shape(labels) != organ_map.geometry.shape:
        raise ValueError(
            f"the organ map ({organ_map.describe()}) has shape {organ_map.geometry.shape}, "
            f"the lesion map {np.shape(labels)}: put it on the PET grid first (organ_map_on_grid)"
        )
    masks, missing = profile_organ_masks(organ_map, tracer.profile.physiological)
    removal = remove_physiological_uptake(
        labels, masks, fraction=fraction, connectivity=connectivity, min_voxels=min_voxels
    )
    stats = quantify_lesions(suv, removal.removed, organ_map.geometry)
    rows = [
        {**component.to_dict(), **{k: v for k, v in s.to_dict().items() if k != "label"}}
        for component, s in zip(removal.components, stats, strict=True)
    ]
    record = {
        "organ_map": organ_map.to_dict(),
        "tracer": tracer.to_dict(),
        "organs_used": list(removal.organs),
        "organs_missing_from_map": missing,
        "fraction": removal.fraction,
        "rule": (
            f"a component with >= {removal.fraction:g} of its voxels in these organs is removed "
            "whole; one with less loses its voxels inside them"
        ),
        "removed": rows,
    }
    return removal, record
