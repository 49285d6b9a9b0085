"""Signed-distance shapes and the canvas they are painted on.

Shapes are signed-distance functions (SDF, in mm, negative inside) in LPS patient
coordinates; a :class:`Layer` is the union of shapes painted with one organ label, one SUV
and one HU. The :class:`Canvas` paints over slabs of slices so a 2×2×3 mm whole body never
needs more than a few slab-sized temporaries.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from petseg.study import Geometry

__all__ = [
    "Canvas",
    "Capsule",
    "Ellipsoid",
    "Intersect",
    "Layer",
    "Shape",
    "Shell",
    "ZProfile",
    "axis_rotation",
    "random_rotation",
]

F32 = np.float32
Grid = tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]
Point = Sequence[float] | NDArray[np.float64]


def random_rotation(rng: np.random.Generator) -> NDArray[np.float64]:
    """Uniformly random 3×3 rotation matrix (from a normalised Gaussian quaternion).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the four Gaussian draws.

    Returns
    -------
    (3, 3) float64 ndarray
    """
    w, x, y, z = rng.standard_normal(4) / 1.0
    n = np.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / n, x / n, y / n, z / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def axis_rotation(axis: str, degrees: float) -> NDArray[np.float64]:
    """Rotation about a patient axis.

    Parameters
    ----------
    axis : str
        ``"x"``, ``"y"`` or ``"z"`` (LPS).
    degrees : float
        Angle, counter-clockwise looking down the axis.

    Returns
    -------
    (3, 3) float64 ndarray
    """
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


# --------------------------------------------------------------------------- shapes


class Shape(ABC):
    """A signed-distance shape: ``sd(X, Y, Z)`` in mm (< 0 inside) and an LPS bounding box.

    Subclasses implement ``_distance`` and set ``lo``/``hi`` (box corners, LPS mm).
    """

    lo: NDArray[np.float64]
    hi: NDArray[np.float64]

    def sd(self, X: NDArray, Y: NDArray, Z: NDArray) -> NDArray[np.float32]:
        """Signed distance to the surface at the points ``(X, Y, Z)``.

        Parameters
        ----------
        X, Y, Z : float32 ndarray
            LPS coordinates in mm, broadcastable against each other.

        Returns
        -------
        float32 ndarray
            Signed distance in mm of the broadcast shape (< 0 inside).
        """
        return self._distance(X, Y, Z)

    @abstractmethod
    def _distance(self, X: NDArray, Y: NDArray, Z: NDArray) -> NDArray[np.float32]:
        """The shape's signed distance (see :meth:`sd`)."""


@dataclass
class Ellipsoid(Shape):
    """Ellipsoid with semi-axes ``axes`` (mm) along the columns of ``rotation``.

    The distance is Quilez's first-order bound ``k0 (k0 - 1) / k1``: exact on the
    surface and within a few per cent of the true distance near it.

    Attributes
    ----------
    centre : (3,) float
        Centre ``(x, y, z)``, LPS mm.
    axes : (3,) float
        Semi-axes in mm.
    rotation : (3, 3) float ndarray, optional
        Orthonormal matrix whose columns are the axes' directions (identity when None).
    """

    centre: Point
    axes: Point
    rotation: NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        self.c = np.asarray(self.centre, dtype=np.float64)
        self.a = np.asarray(self.axes, dtype=np.float64)
        self.r = np.eye(3) if self.rotation is None else np.asarray(self.rotation)
        half = np.sqrt(((self.r * self.a) ** 2).sum(axis=1))
        self.lo, self.hi = self.c - half, self.c + half

    def _distance(self, X: NDArray, Y: NDArray, Z: NDArray) -> NDArray[np.float32]:
        """Quilez's first-order bound (exact on the surface; 0 at the centre)."""
        d = (X - F32(self.c[0]), Y - F32(self.c[1]), Z - F32(self.c[2]))
        k0 = np.zeros(np.broadcast_shapes(X.shape, Y.shape, Z.shape), F32)
        k1 = np.zeros_like(k0)
        for col in range(3):
            u = sum(F32(self.r[row, col]) * d[row] for row in range(3))
            k0 += (u / F32(self.a[col])) ** 2
            k1 += (u / F32(self.a[col] ** 2)) ** 2
        k0 = np.sqrt(k0)
        k1 = np.sqrt(k1)
        return (k0 * (k0 - 1.0) / np.maximum(k1, F32(1e-6))).astype(F32, copy=False)


@dataclass
class Capsule(Shape):
    """Tube from ``a`` to ``b`` (mm) whose radius goes linearly from ``ra`` to ``rb``.

    Attributes
    ----------
    a, b : (3,) float
        End points of the axis, LPS mm.
    ra : float
        Radius at ``a`` in mm.
    rb : float, optional
        Radius at ``b`` in mm (``ra`` when None).
    """

    a: Point
    b: Point
    ra: float
    rb: float | None = None

    def __post_init__(self) -> None:
        self.pa = np.asarray(self.a, dtype=np.float64)
        self.pb = np.asarray(self.b, dtype=np.float64)
        self.r1 = float(self.ra if self.rb is None else self.rb)
        r = max(self.ra, self.r1)
        self.lo = np.minimum(self.pa, self.pb) - r
        self.hi = np.maximum(self.pa, self.pb) + r

    def _distance(self, X: NDArray, Y: NDArray, Z: NDArray) -> NDArray[np.float32]:
        """Distance to the axis segment minus the interpolated radius."""
        ab = (self.pb - self.pa).astype(F32)
        den = F32(max(float(ab @ ab), 1e-9))
        d = (X - F32(self.pa[0]), Y - F32(self.pa[1]), Z - F32(self.pa[2]))
        t = np.clip((d[0] * ab[0] + d[1] * ab[1] + d[2] * ab[2]) / den, 0.0, 1.0)
        dist2 = sum((d[i] - t * ab[i]) ** 2 for i in range(3))
        radius = F32(self.ra) + t * F32(self.r1 - self.ra)
        return (np.sqrt(dist2) - radius).astype(F32, copy=False)


@dataclass
class ZProfile(Shape):
    """Elliptic cylinder along z with semi-axes interpolated between z knots.

    The shape is cut flat at the first and last knot.

    Attributes
    ----------
    knots : (n, 3) float ndarray
        Rows ``(z_mm, semi_x_mm, semi_y_mm)``, sorted by ``z``.
    centre_xy : (2,) float
        The axis position ``(x, y)``, LPS mm.
    offset : float
        Shrinks both semi-axes by this many mm (an inner surface).
    """

    knots: NDArray[np.float64]
    centre_xy: Sequence[float] = (0.0, 0.0)
    offset: float = 0.0

    def __post_init__(self) -> None:
        k = np.asarray(self.knots, dtype=np.float64)
        self.k = k[np.argsort(k[:, 0])]
        cx, cy = self.centre_xy
        mx, my = self.k[:, 1].max(), self.k[:, 2].max()
        self.lo = np.array([cx - mx, cy - my, self.k[0, 0]])
        self.hi = np.array([cx + mx, cy + my, self.k[-1, 0]])

    def _distance(self, X: NDArray, Y: NDArray, Z: NDArray) -> NDArray[np.float32]:
        """The larger of the radial (elliptic) distance and the distance to the end caps."""
        z = np.asarray(Z, dtype=np.float64)
        ax = np.interp(z, self.k[:, 0], self.k[:, 1]).astype(F32) - F32(self.offset)
        ay = np.interp(z, self.k[:, 0], self.k[:, 2]).astype(F32) - F32(self.offset)
        ax, ay = np.maximum(ax, F32(1.0)), np.maximum(ay, F32(1.0))
        u, v = X - F32(self.centre_xy[0]), Y - F32(self.centre_xy[1])
        k0 = np.sqrt((u / ax) ** 2 + (v / ay) ** 2)
        k1 = np.sqrt((u / ax**2) ** 2 + (v / ay**2) ** 2)
        radial = k0 * (k0 - 1.0) / np.maximum(k1, F32(1e-6))
        cap = np.maximum(F32(self.k[0, 0] + self.offset) - Z, Z - F32(self.k[-1, 0] - self.offset))
        return np.maximum(radial, cap).astype(F32, copy=False)


@dataclass
class Intersect(Shape):
    """Intersection of a shape with a half-space ``normal · p <= offset`` (mm).

    Attributes
    ----------
    shape : Shape
        The shape cut.
    normal : (3,) float
        Outward normal of the half-space (normalised on construction).
    offset : float
        Signed distance of the plane from the origin along ``normal``, mm.
    """

    shape: Shape
    normal: Sequence[float]
    offset: float

    def __post_init__(self) -> None:
        self.lo, self.hi = self.shape.lo, self.shape.hi
        self.n = np.asarray(self.normal, dtype=np.float64)
        self.n /= np.linalg.norm(self.n)

    def _distance(self, X: NDArray, Y: NDArray, Z: NDArray) -> NDArray[np.float32]:
        """The larger of the shape's distance and the half-space's."""
        plane = F32(self.n[0]) * X + F32(self.n[1]) * Y + F32(self.n[2]) * Z - F32(self.offset)
        return np.maximum(self.shape.sd(X, Y, Z), plane).astype(F32, copy=False)


@dataclass
class Shell(Shape):
    """Shell of thickness ``thickness`` lying ``inset`` mm inside another shape's surface.

    Attributes
    ----------
    shape : Shape
        The outer surface.
    inset : float
        Depth of the shell's outer face below the surface, mm.
    thickness : float
        Shell thickness, mm.
    """

    shape: Shape
    inset: float
    thickness: float

    def __post_init__(self) -> None:
        self.lo, self.hi = self.shape.lo, self.shape.hi

    def _distance(self, X: NDArray, Y: NDArray, Z: NDArray) -> NDArray[np.float32]:
        """Distance to a surface ``inset`` mm inside the shape, minus half the thickness."""
        half = F32(self.thickness / 2)
        mid = self.shape.sd(X, Y, Z) + F32(self.inset) + half
        return (np.abs(mid) - half).astype(F32, copy=False)


@dataclass
class Layer:
    """Union of shapes painted with one organ label, SUV (g/mL) and HU.

    Attributes
    ----------
    name : str
        Organ name.
    label : int
        Organ label written into the organ map.
    shapes : list of Shape
        The union painted.
    suv : float
        Activity concentration in SUVbw (g/mL).
    hu : float
        CT number in HU.
    clip : Shape or None
        The union is intersected with this shape (organs stay inside the body).
    """

    name: str
    label: int
    shapes: list[Shape]
    suv: float
    hu: float
    clip: Shape | None = None


# --------------------------------------------------------------------------- canvas


class Canvas:
    """The output grid (axis-aligned, LPS) with slab-wise SDF painting.

    Holds the noiseless activity (SUV, anti-aliased), CT (HU, anti-aliased) and the
    organ labels (voxel-centre-inside rule).

    Parameters
    ----------
    geometry : Geometry
        Axis-aligned grid with +x, +y, +z axes.
    slab : int
        Slices painted at a time (bounds the memory of one painting step).
    """

    def __init__(self, geometry: Geometry, slab: int = 24) -> None:
        a = geometry.affine
        if not geometry.is_axis_aligned() or min(a[2, 0], a[1, 1], a[0, 2]) <= 0:
            raise ValueError("the phantom grid must be axis-aligned with +x, +y, +z axes")
        self.geometry = geometry
        self.shape = geometry.shape
        dz, dy, dx = geometry.spacing
        ox, oy, oz = geometry.origin
        nz, ny, nx = self.shape
        self.z = (oz + dz * np.arange(nz)).astype(F32)
        self.y = (oy + dy * np.arange(ny)).astype(F32)
        self.x = (ox + dx * np.arange(nx)).astype(F32)
        self.ramp = float(np.cbrt(dx * dy * dz))
        self.slab = slab
        self.activity = np.zeros(self.shape, F32)
        self.hu = np.full(self.shape, -1000.0, F32)
        self.organs = np.zeros(self.shape, np.uint8)

    def index_range(self, lo: NDArray, hi: NDArray) -> tuple[slice, slice, slice] | None:
        """Index slices (k, j, i) of the voxels whose centres lie in a box.

        The box is widened by one voxel (the anti-aliasing ramp) on every side.

        Parameters
        ----------
        lo, hi : (3,) float ndarray
            Box corners ``(x, y, z)`` in LPS mm.

        Returns
        -------
        tuple of slice or None
            ``(k, j, i)`` slices; None when no voxel centre lies in the box.
        """
        out = []
        for axis, coords in zip((2, 1, 0), (self.z, self.y, self.x), strict=True):
            start = int(np.searchsorted(coords, lo[axis] - self.ramp, side="left"))
            stop = int(np.searchsorted(coords, hi[axis] + self.ramp, side="right"))
            if stop <= start:
                return None
            out.append(slice(start, stop))
        return (out[0], out[1], out[2])

    def grid(self, region: tuple[slice, slice, slice]) -> Grid:
        """Broadcastable coordinate arrays of a region.

        Parameters
        ----------
        region : tuple of slice
            ``(k, j, i)`` index slices.

        Returns
        -------
        X, Y, Z : float32 ndarray
            LPS coordinates in mm, shaped ``(1, 1, nx)``, ``(1, ny, 1)``, ``(nz, 1, 1)``.
        """
        ks, js, is_ = region
        return (
            self.x[is_][None, None, :],
            self.y[js][None, :, None],
            self.z[ks][:, None, None],
        )

    def union_sd(
        self, shapes: Sequence[Shape], region: tuple[slice, slice, slice], clip: Shape | None
    ) -> NDArray[np.float32]:
        """Signed distance of the union of shapes over a region.

        Parameters
        ----------
        shapes : sequence of Shape
            The union.
        region : tuple of slice
            ``(k, j, i)`` index slices.
        clip : Shape or None
            The union is intersected with it.

        Returns
        -------
        (nz, ny, nx) float32 ndarray
            Signed distance in mm (1e4 far from every shape).
        """
        ks, js, is_ = region
        sd = np.full((ks.stop - ks.start, js.stop - js.start, is_.stop - is_.start), 1e4, F32)
        for shape in shapes:
            sub = self.index_range(shape.lo, shape.hi)
            if sub is None:
                continue
            inner = tuple(
                slice(max(s.start, r.start), min(s.stop, r.stop))
                for s, r in zip(sub, region, strict=True)
            )
            if any(s.stop <= s.start for s in inner):
                continue
            local = tuple(
                slice(s.start - r.start, s.stop - r.start)
                for s, r in zip(inner, region, strict=True)
            )
            X, Y, Z = self.grid(inner)  # type: ignore[arg-type]
            np.minimum(sd[local], shape.sd(X, Y, Z), out=sd[local])
        if clip is not None:
            X, Y, Z = self.grid(region)
            np.maximum(sd, clip.sd(X, Y, Z), out=sd)
        return sd

    def slabs(self, lo: NDArray, hi: NDArray) -> list[tuple[slice, slice, slice]]:
        """The region of a box cut into slabs of at most ``slab`` slices.

        Parameters
        ----------
        lo, hi : (3,) float ndarray
            The box, as for :meth:`index_range`.

        Returns
        -------
        list of tuple of slice
            ``(k, j, i)`` slices, in slice order; empty when the box holds no voxel centre.
        """
        region = self.index_range(lo, hi)
        if region is None:
            return []
        ks, js, is_ = region
        return [
            (slice(k, min(k + self.slab, ks.stop)), js, is_)
            for k in range(ks.start, ks.stop, self.slab)
        ]

    def paint(self, layer: Layer) -> None:
        """Paint a layer over what is there (later layers win), slab by slab.

        Parameters
        ----------
        layer : Layer
            Its union is blended into activity and CT and labels the voxel centres inside.
        """
        shapes = [s for s in layer.shapes if s is not None]
        if not shapes:
            return
        lo = np.min([s.lo for s in shapes], axis=0)
        hi = np.max([s.hi for s in shapes], axis=0)
        for region in self.slabs(lo, hi):
            sd = self.union_sd(shapes, region, layer.clip)
            self.blend(region, sd, layer.suv, layer.hu)
            self.organs[region][sd <= 0] = layer.label

    def blend(
        self, region: tuple[slice, slice, slice], sd: NDArray[np.float32], suv: float, hu: float
    ) -> NDArray[np.float32]:
        """Mix ``suv``/``hu`` into the region by the fraction of each voxel inside (0..1).

        The fraction is a linear ramp of the signed distance over one voxel width
        (geometric-mean spacing), which approximates the volume fraction of a smooth
        surface through a voxel; a voxel whose centre is inside gets at least 0.5.

        Parameters
        ----------
        region : tuple of slice
            ``(k, j, i)`` index slices.
        sd : (nz, ny, nx) float32 ndarray
            Signed distance in mm over the region.
        suv : float
            Activity concentration, SUVbw in g/mL.
        hu : float
            CT number in HU.

        Returns
        -------
        (nz, ny, nx) float32 ndarray
            The fraction of each voxel inside, in [0, 1].
        """
        frac = np.clip(F32(0.5) - sd / F32(self.ramp), 0.0, 1.0)
        act = self.activity[region]
        act += frac * (F32(suv) - act)
        ct = self.hu[region]
        ct += frac * (F32(hu) - ct)
        return frac
