"""Lesions of the phantom: where they may grow, how many, how large, how hot.

Neuroendocrine tumour lesions are ellipsoids drawn per patient: a primary tumour (small
intestine, pancreas or lung, Carlsen et al. 2022 Table 2) and metastases in liver, lymph
nodes, bone and lung, each placed inside its host tissue away from the other lesions,
then voxelised and painted into the activity and CT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from petseg.phantom.anatomy import LABEL, Body
from petseg.phantom.shapes import Canvas, Ellipsoid, random_rotation

if TYPE_CHECKING:
    from petseg.phantom.config import PhantomConfig

__all__ = [
    "METASTASIS_SITES",
    "PRIMARY_DIAMETER_MM",
    "PRIMARY_SITES",
    "SITES",
    "Lesion",
    "LesionPlacer",
    "Site",
    "draw_lesions",
    "paint_lesions",
]

#: Site of the primary tumour, from Carlsen et al. 2022 Table 2 (overall N = 158):
#: small intestine 57 % (+ caecum 5 %), pancreas 20 %, lung 8 %, other/unknown 10 %.
PRIMARY_SITES: dict[str, float] = {
    "small_intestine": 0.62,
    "pancreas": 0.20,
    "lung": 0.08,
    "unknown": 0.10,
}
PRIMARY_DIAMETER_MM = {
    "small_intestine": (10.0, 30.0),
    "pancreas": (10.0, 40.0),
    "lung": (10.0, 40.0),
}
#: Mean share of metastases per site (each patient draws its own shares around these).
METASTASIS_SITES: dict[str, float] = {
    "liver": 0.50,
    "lymph_node_mesenteric": 0.15,
    "lymph_node_retroperitoneal": 0.15,
    "bone": 0.15,
    "lung": 0.05,
}


@dataclass(frozen=True)
class Site:
    """Where lesions of one site may be placed, and how they look.

    Attributes
    ----------
    hosts : tuple of str
        Organs (:data:`~petseg.phantom.anatomy.ORGANS`) a lesion centre may lie in.
    box : ((float, float), (float, float), (float, float)) or None
        Reference-adult ranges ``((x0, x1), (y0, y1), (depth0, depth1))`` in mm the centre
        must lie in (None: anywhere in the hosts).
    depth_fraction : float
        How deep inside the host the centre must lie, as a fraction of the lesion's
        largest semi-axis.
    diameter_mm : (float, float)
        Range of the equivalent-sphere diameter in mm (drawn log-uniformly).
    hu : float
        Mean CT number of the lesion in HU.
    """

    hosts: tuple[str, ...]
    box: tuple[tuple[float, float], tuple[float, float], tuple[float, float]] | None
    depth_fraction: float
    diameter_mm: tuple[float, float]
    hu: float


SITES: dict[str, Site] = {
    "liver": Site(("liver",), None, 0.4, (5.0, 40.0), 45.0),
    "lymph_node_mesenteric": Site(
        ("fat",), ((-80, 80), (-85, 15), (610, 770)), 0.3, (5.0, 25.0), 40.0
    ),
    "lymph_node_retroperitoneal": Site(
        ("fat", "soft_tissue"), ((-60, 60), (-5, 40), (560, 780)), 0.3, (5.0, 25.0), 40.0
    ),
    "bone": Site(("bone_marrow",), ((-200, 200), (-200, 200), (280, 830)), 0.0, (5.0, 25.0), 600.0),
    "lung": Site(("lungs",), None, 0.8, (5.0, 20.0), 30.0),
    "small_intestine": Site(
        ("bowel",), ((-120, 30), (-120, 120), (660, 800)), 0.0, (10.0, 30.0), 50.0
    ),
    "pancreas": Site(("pancreas",), None, 0.0, (10.0, 40.0), 50.0),
}


@dataclass
class Lesion:
    """One drawn lesion: an ellipsoid with its uptake and CT number.

    Attributes
    ----------
    site : str
        Key of :data:`SITES` (or of :data:`PRIMARY_DIAMETER_MM` for a primary).
    kind : str
        ``"primary"`` or ``"metastasis"``.
    centre : (3,) float64 ndarray
        Centre in LPS mm (set when placed).
    axes : (3,) float64 ndarray
        Semi-axes in mm.
    rotation : (3, 3) float64 ndarray
        Orientation of the semi-axes.
    suv : float
        True activity concentration, SUVbw in g/mL.
    hu : float
        CT number in HU.
    low_uptake : bool
        Drawn near the expected liver threshold (a realistic miss of the threshold method).
    """

    site: str
    kind: str
    centre: NDArray[np.float64]
    axes: NDArray[np.float64]
    rotation: NDArray[np.float64]
    suv: float
    hu: float
    low_uptake: bool

    @property
    def diameter_mm(self) -> float:
        """Diameter of the sphere of equal volume, in mm."""
        return float(2.0 * np.cbrt(np.prod(self.axes)))

    @property
    def bound_mm(self) -> float:
        """Radius of a sphere around the centre that holds the lesion, in mm."""
        return float(self.axes.max())


class LesionPlacer:
    """Samples lesion centres inside host tissue, away from the other lesions.

    Parameters
    ----------
    canvas : Canvas
        The painted anatomy (organ labels).
    body : Body
        The patient's body outline (scales the sites' boxes).
    gap_mm : float
        Least distance between two lesions' surfaces, mm.
    """

    def __init__(self, canvas: Canvas, body: Body, gap_mm: float) -> None:
        """Keep the canvas, body and gap; no lesion placed yet."""
        self.canvas = canvas
        self.body = body
        self.gap = gap_mm
        self.cache: dict[str, tuple[NDArray[np.float64], NDArray[np.float32]] | None] = {}
        self.placed: list[Lesion] = []

    def _candidates(self, site: str) -> tuple[NDArray[np.float64], NDArray[np.float32]] | None:
        """(N, 3) LPS mm of host voxels and their depth inside the host (mm)."""
        if site in self.cache:
            return self.cache[site]
        spec = SITES[site]
        canvas, body = self.canvas, self.body
        mask = np.isin(canvas.organs, [LABEL[h] for h in spec.hosts])
        if spec.box is not None:
            (x0, x1), (y0, y1), (d0, d1) = spec.box
            s = body.inner
            mask &= (canvas.x >= x0 * s)[None, None, :] & (canvas.x <= x1 * s)[None, None, :]
            mask &= (canvas.y >= y0 * s)[None, :, None] & (canvas.y <= y1 * s)[None, :, None]
            mask &= (canvas.z <= body.z(d0))[:, None, None] & (canvas.z >= body.z(d1))[
                :, None, None
            ]
        found = ndimage.find_objects(mask.astype(np.uint8))
        if not found or found[0] is None:
            self.cache[site] = None
            return None
        box = found[0]
        sub = np.pad(mask[box], 1)
        depth = ndimage.distance_transform_edt(sub, sampling=canvas.geometry.spacing)[
            1:-1, 1:-1, 1:-1
        ]
        k, j, i = np.nonzero(mask[box])
        xyz = np.column_stack(
            [canvas.x[i + box[2].start], canvas.y[j + box[1].start], canvas.z[k + box[0].start]]
        ).astype(np.float64)
        self.cache[site] = (xyz, depth[k, j, i].astype(np.float32))
        return self.cache[site]

    def place(self, rng: np.random.Generator, lesion: Lesion, attempts: int = 40) -> bool:
        """Find a centre for a lesion inside its host tissue, away from the others.

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of the candidate centres.
        lesion : Lesion
            Its ``centre`` is set when a place is found.
        attempts : int
            Candidate centres tried before giving up.

        Returns
        -------
        bool
            False when no candidate fitted (the lesion is dropped).
        """
        found = self._candidates(lesion.site)
        if found is None:
            return False
        xyz, depth = found
        need = SITES[lesion.site].depth_fraction * lesion.bound_mm
        ok = np.flatnonzero(depth >= min(need, float(depth.max())))
        geometry = self.canvas.geometry
        spacing = np.asarray(geometry.spacing)
        shape = np.asarray(geometry.shape)
        for _ in range(attempts):
            centre = xyz[ok[rng.integers(ok.size)]] + rng.uniform(-0.5, 0.5, 3) * spacing[::-1]
            index = geometry.patient_to_index(centre)
            reach = lesion.bound_mm / spacing + 1
            if np.any(index - reach < 0) or np.any(index + reach > shape - 1):
                continue
            if all(
                np.linalg.norm(centre - other.centre)
                >= lesion.bound_mm + other.bound_mm + max(self.gap, 2 * spacing.max())
                for other in self.placed
            ):
                lesion.centre = centre
                self.placed.append(lesion)
                return True
        return False


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A draw whose logarithm is uniform between log(lo) and log(hi)."""
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def draw_lesions(
    rng: np.random.Generator,
    placer: LesionPlacer,
    n: int,
    threshold_estimate: float,
    config: PhantomConfig,
) -> tuple[list[Lesion], str]:
    """Draw ``n`` lesions (primary first, when in place) and place them.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of every draw.
    placer : LesionPlacer
        Places each lesion in its host tissue; a lesion that does not fit is dropped.
    n : int
        Lesions to draw.
    threshold_estimate : float
        Expected liver threshold in SUVbw (g/mL); lesion uptake is drawn relative to it.
    config : PhantomConfig
        Primary probability, low-uptake share and uptake ratios.

    Returns
    -------
    lesions : list of Lesion
        The placed lesions.
    primary : str
        Site of the primary tumour in place, or ``"none"``.
    """
    primary = str(rng.choice(list(PRIMARY_SITES), p=list(PRIMARY_SITES.values())))
    has_primary = n > 0 and primary != "unknown" and rng.uniform() < config.primary_probability
    names = list(METASTASIS_SITES)
    shares = rng.dirichlet(4.0 * np.asarray(list(METASTASIS_SITES.values())))
    plan = [(primary, "primary")] if has_primary else []
    plan += [(str(s), "metastasis") for s in rng.choice(names, size=n - len(plan), p=shares)]
    lesions = []
    for site, kind in plan:
        lo, hi = PRIMARY_DIAMETER_MM[site] if kind == "primary" else SITES[site].diameter_mm
        diameter = _log_uniform(rng, lo, hi)
        ratios = np.exp(np.clip(rng.normal(0.0, 0.15, 3), -0.35, 0.35))
        axes = diameter / 2.0 * ratios / np.cbrt(np.prod(ratios))
        low = bool(rng.uniform() < config.low_uptake_fraction)
        ratio = rng.uniform(0.6, 1.2) if low else _log_uniform(rng, *config.high_uptake_ratio)
        lesion = Lesion(
            site=site,
            kind=kind,
            centre=np.zeros(3),
            axes=axes,
            rotation=random_rotation(rng),
            suv=float(ratio * threshold_estimate),
            hu=float(SITES[site].hu + rng.normal(0.0, 8.0)),
            low_uptake=low,
        )
        if placer.place(rng, lesion):
            lesions.append(lesion)
    return lesions, primary if has_primary else "none"


def paint_lesions(canvas: Canvas, lesions: list[Lesion]) -> NDArray[np.int32]:
    """Voxelise the lesions (centre-inside rule) as labels 1..N and paint their SUV/HU.

    Parameters
    ----------
    canvas : Canvas
        The painted anatomy; activity and CT are blended with each lesion.
    lesions : list of Lesion
        Placed lesions; one smaller than a voxel is moved onto the nearest voxel centre.

    Returns
    -------
    (Z, Y, X) int32 ndarray
        Lesion labels 1..N in the order given (0 = background).
    """
    labels = np.zeros(canvas.shape, np.int32)
    geometry = canvas.geometry
    for number, lesion in enumerate(lesions, start=1):
        for _ in range(2):
            shape = Ellipsoid(lesion.centre, lesion.axes, lesion.rotation)
            found = canvas.index_range(shape.lo, shape.hi)
            if found is None:
                raise RuntimeError("a phantom lesion left the grid; this is a bug in the placer")
            region = found
            sd = shape.sd(*canvas.grid(region))
            inside = sd <= 0
            if inside.any():
                break
            # A lesion smaller than a voxel may hold no voxel centre: move it onto one.
            lesion.centre = geometry.index_to_patient(
                np.rint(geometry.patient_to_index(lesion.centre))
            )
        if np.any(labels[region][inside]):
            raise RuntimeError("phantom lesions overlap; this is a bug in the lesion placer")
        labels[region][inside] = number
        canvas.blend(region, sd, lesion.suv, lesion.hu)
    return labels
