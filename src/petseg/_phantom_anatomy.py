"""Geometry of the whole-body phantom: signed-distance shapes, slab-wise painting, anatomy.

Private to :mod:`petseg.phantom`. Shapes are signed-distance functions (SDF, in mm,
negative inside) in LPS patient coordinates; a *layer* is the union of shapes painted
with one organ label, one SUV and one HU. Painting runs over slabs of slices so a
2×2×3 mm whole body never needs more than a few slab-sized temporaries.

Anatomy is written for a reference adult as positions ``(x, y, depth)`` in mm: ``x``
towards the patient's left, ``y`` posterior (LPS), ``depth`` below the vertex. A
:class:`Body` maps them to LPS with the patient's height and girth scales and jitters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from petseg.study import Geometry

__all__ = [
    "ORGANS",
    "SITES",
    "Body",
    "Canvas",
    "Capsule",
    "Ellipsoid",
    "Layer",
    "Shape",
    "Site",
    "ZProfile",
    "anatomy_layers",
    "random_rotation",
]

F32 = np.float32
Grid = tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]
Point = Sequence[float] | NDArray[np.float64]

#: Organ labels of ``organs.nii.gz`` (uint8), in painting-independent order.
ORGANS: dict[int, str] = {
    0: "background",
    1: "soft_tissue",
    2: "fat",
    3: "brain",
    4: "pituitary",
    5: "salivary_glands",
    6: "thyroid",
    7: "lungs",
    8: "heart_and_aorta",
    9: "liver",
    10: "spleen",
    11: "kidneys",
    12: "adrenals",
    13: "pancreas",
    14: "stomach",
    15: "bowel",
    16: "bladder",
    17: "bone_marrow",
    18: "bone_cortical",
}
LABEL = {name: label for label, name in ORGANS.items()}


def random_rotation(rng: np.random.Generator) -> NDArray[np.float64]:
    """Uniformly random 3×3 rotation matrix (from a normalised Gaussian quaternion)."""
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
    """Rotation about the patient x, y or z axis by ``degrees``."""
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


# --------------------------------------------------------------------------- shapes


class Shape:
    """A signed-distance shape: ``sd(X, Y, Z)`` in mm (< 0 inside) and an LPS bounding box."""

    lo: NDArray[np.float64]
    hi: NDArray[np.float64]

    def sd(self, X: NDArray, Y: NDArray, Z: NDArray) -> NDArray[np.float32]:
        raise NotImplementedError


@dataclass
class Ellipsoid(Shape):
    """Ellipsoid with semi-axes ``axes`` (mm) along the columns of ``rotation``.

    The distance is Quilez's first-order bound ``k0 (k0 - 1) / k1``: exact on the
    surface and within a few per cent of the true distance near it.
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

    def sd(self, X: NDArray, Y: NDArray, Z: NDArray) -> NDArray[np.float32]:
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
    """Tube from ``a`` to ``b`` (mm) whose radius goes linearly from ``ra`` to ``rb``."""

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

    def sd(self, X: NDArray, Y: NDArray, Z: NDArray) -> NDArray[np.float32]:
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

    ``knots`` rows are ``(z_mm, semi_x_mm, semi_y_mm)``, ``z`` increasing; the shape
    is cut flat at the first and last knot. ``centre_xy`` is the axis position.
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

    def sd(self, X: NDArray, Y: NDArray, Z: NDArray) -> NDArray[np.float32]:
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
    """Intersection of a shape with a half-space ``normal · p <= offset`` (mm)."""

    shape: Shape
    normal: Sequence[float]
    offset: float

    def __post_init__(self) -> None:
        self.lo, self.hi = self.shape.lo, self.shape.hi
        self.n = np.asarray(self.normal, dtype=np.float64)
        self.n /= np.linalg.norm(self.n)

    def sd(self, X: NDArray, Y: NDArray, Z: NDArray) -> NDArray[np.float32]:
        plane = F32(self.n[0]) * X + F32(self.n[1]) * Y + F32(self.n[2]) * Z - F32(self.offset)
        return np.maximum(self.shape.sd(X, Y, Z), plane).astype(F32, copy=False)


@dataclass
class Shell(Shape):
    """Shell of thickness ``thickness`` lying ``inset`` mm inside another shape's surface."""

    shape: Shape
    inset: float
    thickness: float

    def __post_init__(self) -> None:
        self.lo, self.hi = self.shape.lo, self.shape.hi

    def sd(self, X: NDArray, Y: NDArray, Z: NDArray) -> NDArray[np.float32]:
        half = F32(self.thickness / 2)
        mid = self.shape.sd(X, Y, Z) + F32(self.inset) + half
        return (np.abs(mid) - half).astype(F32, copy=False)


@dataclass
class Layer:
    """Union of shapes painted with one organ label, SUV (g/mL) and HU.

    ``clip``: the union is intersected with this shape (organs stay inside the body).
    """

    name: str
    shapes: list[Shape]
    suv: float
    hu: float
    clip: Shape | None = None
    label: int = field(init=False)

    def __post_init__(self) -> None:
        self.label = LABEL[self.name]


# --------------------------------------------------------------------------- canvas


class Canvas:
    """The output grid (axis-aligned, LPS) with slab-wise SDF painting.

    Holds the noiseless activity (SUV, anti-aliased), CT (HU, anti-aliased) and the
    organ labels (voxel-centre-inside rule).
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
        """Index slices (k, j, i) of the voxels whose centres lie in the mm box ``lo..hi``."""
        out = []
        for axis, coords in zip((2, 1, 0), (self.z, self.y, self.x), strict=True):
            start = int(np.searchsorted(coords, lo[axis] - self.ramp, side="left"))
            stop = int(np.searchsorted(coords, hi[axis] + self.ramp, side="right"))
            if stop <= start:
                return None
            out.append(slice(start, stop))
        return (out[0], out[1], out[2])

    def grid(self, region: tuple[slice, slice, slice]) -> Grid:
        """Broadcastable ``(Z, Y, X)`` mm coordinate arrays of a region."""
        ks, js, is_ = region
        return (
            self.x[is_][None, None, :],
            self.y[js][None, :, None],
            self.z[ks][:, None, None],
        )

    def union_sd(
        self, shapes: Sequence[Shape], region: tuple[slice, slice, slice], clip: Shape | None
    ) -> NDArray[np.float32]:
        """Signed distance of the union of ``shapes`` over ``region`` (clipped by ``clip``)."""
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
        region = self.index_range(lo, hi)
        if region is None:
            return []
        ks, js, is_ = region
        return [
            (slice(k, min(k + self.slab, ks.stop)), js, is_)
            for k in range(ks.start, ks.stop, self.slab)
        ]

    def paint(self, layer: Layer) -> None:
        """Paint a layer over what is there (later layers win), slab by slab."""
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
        """
        frac = np.clip(F32(0.5) - sd / F32(self.ramp), 0.0, 1.0)
        act = self.activity[region]
        act += frac * (F32(suv) - act)
        ct = self.hu[region]
        ct += frac * (F32(hu) - ct)
        return frac


# --------------------------------------------------------------------------- anatomy


@dataclass
class Body:
    """Maps reference-adult positions to this patient's LPS mm.

    ``z_vertex``: LPS z of the top of the head; ``height``: axial scale; ``girth``:
    scale of the body outline; organ positions scale with ``0.6 + 0.4·girth`` (the extra
    girth of a heavier patient is mostly fat).
    """

    z_vertex: float
    height: float
    girth: float

    @property
    def inner(self) -> float:
        return 0.6 + 0.4 * self.girth

    def p(
        self, x: float, y: float, depth: float, outline: bool = False
    ) -> tuple[float, float, float]:
        s = self.girth if outline else self.inner
        return (x * s, y * s, self.z(depth))

    def z(self, depth: float) -> float:
        return self.z_vertex - depth * self.height


#: Torso outline of the reference adult (girth 1): depth below vertex, semi-x, semi-y (mm).
TORSO = np.array(
    [
        [262, 120, 80],
        [285, 175, 95],
        [330, 170, 102],
        [420, 160, 108],
        [520, 152, 112],
        [620, 150, 114],
        [720, 162, 110],
        [800, 175, 106],
        [880, 170, 100],
    ]
)


def _torso(body: Body, inset: float) -> ZProfile:
    knots = np.column_stack(
        [
            [body.z(d) for d in TORSO[:, 0]],
            TORSO[:, 1] * body.girth,
            TORSO[:, 2] * body.girth,
        ]
    )
    return ZProfile(knots, offset=inset)


def _torso_semi(body: Body, depth: float) -> tuple[float, float]:
    """Semi-axes (x, y) of the torso outline at ``depth`` (mm)."""
    return (
        float(np.interp(depth, TORSO[:, 0], TORSO[:, 1]) * body.girth),
        float(np.interp(depth, TORSO[:, 0], TORSO[:, 2]) * body.girth),
    )


def _chain(
    points: Sequence[tuple[float, float, float]], radius: float | Sequence[float]
) -> list[Shape]:
    """Capsules joining consecutive points (a tube along a polyline)."""
    if isinstance(radius, (int, float)):
        radii = [float(radius)] * len(points)
    else:
        radii = [float(r) for r in radius]
    return [
        Capsule(points[i], points[i + 1], radii[i], radii[i + 1]) for i in range(len(points) - 1)
    ]


def _bowel_walk(
    rng: np.random.Generator, body: Body, start: tuple[float, float, float], steps: int
) -> list[tuple[float, float, float]]:
    """Small-bowel centreline: a persistent random walk kept inside the lower abdomen."""
    centre = np.array(body.p(0, -25, 700))
    semi = np.array([70 * body.inner, 40 * body.inner, 65 * body.height])
    pos = np.array(start, dtype=np.float64)
    direction = rng.standard_normal(3)
    direction /= np.linalg.norm(direction)
    points = [tuple(pos)]
    for _ in range(steps):
        direction = direction + 0.9 * rng.standard_normal(3)
        inside = (pos - centre) / semi
        if np.linalg.norm(inside) > 0.8:
            direction -= 1.5 * inside
        direction /= np.linalg.norm(direction)
        pos = pos + 22.0 * direction
        points.append(tuple(pos))
    return points


def anatomy_layers(
    rng: np.random.Generator,
    body: Body,
    suv: dict[str, float],
    hu: dict[str, float],
    *,
    arms: str,
    fat_mm: float,
    bladder_axes: tuple[float, float, float],
) -> list[Layer]:
    """The body's layers in painting order (later layers win where they overlap).

    Parameters
    ----------
    rng : jitters organ sizes (±15 %) and positions (SD 5 mm), and the bowel course
    body : reference-to-patient mapping
    suv, hu : per organ name (see :data:`ORGANS`): SUV (g/mL) and CT number (HU)
    arms : "up" (raised beside the head) or "down" (beside the trunk)
    fat_mm : subcutaneous fat thickness (mm)
    bladder_axes : bladder semi-axes (x, y, z) in mm (its filling)
    """

    def jit(x: float, y: float, depth: float) -> tuple[float, float, float]:
        px, py, pz = body.p(x, y, depth)
        dx, dy, dz = rng.normal(0.0, 5.0, 3)
        return (px + dx, py + dy, pz + dz)

    def size(*axes: float) -> tuple[float, ...]:
        f = rng.uniform(0.85, 1.15)
        return tuple(a * f * body.inner for a in axes[:2]) + tuple(
            a * f * body.height for a in axes[2:]
        )

    P, Z, g = body.p, body.z, body.girth
    rx = axis_rotation
    outline = _torso(body, 0.0)
    inner = _torso(body, fat_mm)
    layers: list[Layer] = []

    def add(
        name: str, shapes: Sequence[Shape], clip: Shape | None = None, value: str | None = None
    ) -> None:
        key = value or name
        layers.append(Layer(name, list(shapes), suv[key], hu[key], clip))

    # Body outline (fat everywhere, then muscle inside the subcutaneous fat)
    head = Ellipsoid(P(0, 0, 115, True), (75 * g**0.3, 94 * g**0.3, 115 * body.height))
    neck = ZProfile(
        np.array([[Z(300), 58 * g, 55 * g], [Z(190), 55 * g, 52 * g]]),
        centre_xy=P(0, 10, 0, True)[:2],
    )
    thighs = [
        ZProfile(
            np.array(
                [[Z(1300), 70 * g, 72 * g], [Z(850), 85 * g, 88 * g], [Z(790), 85 * g, 88 * g]]
            ),
            centre_xy=P(side * 88, 0, 0, True)[:2],
        )
        for side in (-1, 1)
    ]
    if arms == "down":
        arm_pts = [
            [
                P(side * 200, 0, 300, True),
                P(side * 215, 10, 580, True),
                P(side * 205, -10, 850, True),
            ]
            for side in (-1, 1)
        ]
        arm_r = [45 * g, 38 * g, 32 * g]
        bone_r = [13, 11, 9]
    else:
        arm_pts = [
            [P(side * 175, 5, 300, True), P(side * 150, 15, 40), P(side * 60, 20, -120)]
            for side in (-1, 1)
        ]
        arm_r = [45 * g, 40 * g, 34 * g]
        bone_r = [13, 12, 10]
    arm_tubes = [c for pts in arm_pts for c in _chain(pts, arm_r)]
    add("fat", [outline, head, neck, *thighs, *arm_tubes])
    limb_muscle = [
        ZProfile(t.k.copy(), centre_xy=t.centre_xy, offset=fat_mm * 0.6) for t in thighs
    ] + [c for pts in arm_pts for c in _chain(pts, [r - fat_mm * 0.6 for r in arm_r])]
    add("soft_tissue", [inner, Ellipsoid(head.c, head.a - 3), neck, *limb_muscle])

    # Visceral fat filling the abdominal cavity, then the bowel in it
    add(
        "fat",
        [Ellipsoid(P(0, -15, 705), (120, 75, 150 * body.height / body.inner))],
        clip=_torso(body, fat_mm + 12),
    )
    colon = [
        jit(-90, -10, 770),
        jit(-98, 5, 650),
        jit(-85, -35, 610),
        jit(0, -75, 660),
        jit(85, -30, 600),
        jit(98, 10, 690),
        jit(55, -15, 790),
        jit(0, 35, 800),
        jit(0, 45, 860),
    ]
    small = _bowel_walk(rng, body, body.p(-60, -25, 745), steps=45)
    add("bowel", _chain(colon, 20 * body.inner) + _chain(small, 12 * body.inner), clip=inner)
    add("stomach", [Ellipsoid(jit(55, -35, 545), size(40, 35, 55), rx("y", -25))], clip=inner)

    # Thorax
    for side, depth in ((-1, 410), (1, 420)):
        lung = Ellipsoid(jit(side * 75, 10, depth), size(62, 82, 125))
        add("lungs", [Intersect(lung, (-side, 0, 0), -20 * body.inner)], clip=inner)
    add("heart_and_aorta", [Ellipsoid(jit(25, -25, 455), size(58, 48, 52), rx("z", 30))])
    aorta = [P(0, -10, 370), P(15, 30, 350), P(20, 38, 480), P(8, 32, 720)]
    iliac = [[P(8, 32, 720), P(side * 55, 20, 800)] for side in (-1, 1)]
    add("heart_and_aorta", _chain(aorta, 12) + [c for pts in iliac for c in _chain(pts, 7)])

    # Upper abdomen
    liver = [
        Ellipsoid(jit(-62, 5, 550), size(64, 68, 70)),
        Ellipsoid(jit(5, -36, 525), size(52, 32, 32), rx("z", -20)),
    ]
    add("liver", liver, clip=inner)
    add("spleen", [Ellipsoid(jit(95, 45, 535), size(28, 55, 52), rx("z", -40))], clip=inner)
    pancreas = [jit(-25, -12, 628), jit(15, -5, 608), jit(65, 5, 588)]
    add("pancreas", _chain(pancreas, [15 * body.inner, 12 * body.inner, 10 * body.inner]))
    for side, depth in ((-1, 640), (1, 620)):
        kidney = Ellipsoid(
            jit(side * 72, 50, depth), size(25, 28, 52), rx("z", side * 30) @ rx("y", side * 15)
        )
        add("kidneys", [kidney])
        adrenal = Ellipsoid(jit(side * 45, 40, depth - 75), size(6, 14, 18), rx("z", side * 20))
        add("adrenals", [adrenal])
    add("bladder", [Ellipsoid(jit(0, -40, 835), bladder_axes)], clip=inner)

    # Skeleton: skull, spine, ribs, sternum, clavicles, pelvis, femora, humeri
    skull = Intersect(Shell(head, 2.0, 8.0), (0, 0, -1), -Z(175))
    add("bone_cortical", [skull])
    vertebrae: list[Shape] = []
    processes: list[Shape] = []
    # (first and last depth, count, body semi-axes x/y) of cervical, thoracic, lumbar
    for first, last, count, rxy in (
        (178, 268, 7, (11, 9)),
        (290, 550, 12, (15, 13)),
        (578, 765, 5, (22, 17)),
    ):
        half = ((last - first) / (count - 1) / 2 - 3) * body.height
        for depth in np.linspace(first, last, count):
            y = 15 if first < 270 else 50 + 8 * np.sin(np.pi * min(depth - 270, 290) / 290)
            cx, cy, cz = P(0, y, depth)
            vertebrae.append(
                ZProfile(np.array([[cz - half, *rxy], [cz + half, *rxy]]), centre_xy=(cx, cy))
            )
            tip = P(0, y + rxy[1] + 30, depth + 10)
            processes.append(Capsule((cx, cy + rxy[1], cz), tip, 6.0, 4.0))
    add("bone_marrow", vertebrae)
    add("bone_cortical", processes)
    ribs: list[Shape] = []
    for depth in np.linspace(300, 560, 11):
        sx, sy = _torso_semi(body, depth)
        a, b = sx - fat_mm - 14, sy - fat_mm - 10
        for side in (-1, 1):
            angles = np.linspace(0.45 * np.pi, -0.35 * np.pi, 9)
            pts = [
                (side * a * np.cos(t), b * np.sin(t), Z(depth + 45 * (1 - np.sin(t)) / 2))
                for t in angles
            ]
            ribs += _chain(pts, 5.0)
    add("bone_cortical", ribs)
    sx, sy = _torso_semi(body, 400)
    sternum = ZProfile(
        np.array([[Z(480), 14, 6], [Z(330), 16, 6]]), centre_xy=(0.0, -(sy - fat_mm - 12))
    )
    add("bone_marrow", [sternum])
    clavicles = [Capsule(P(side * 20, -70, 290), P(side * 150, -15, 282), 7.0) for side in (-1, 1)]
    add("bone_cortical", clavicles)
    pelvis: list[Shape] = [Ellipsoid(P(0, 58, 800), (42, 16, 50 * body.height), rx("x", -30))]
    for side in (-1, 1):
        pelvis.append(
            Ellipsoid(P(side * 82, 35, 745), (55, 10, 60 * body.height), rx("z", side * 35))
        )
        pelvis += _chain([P(side * 88, 0, 835), P(side * 15, -55, 855)], 10.0)
        pelvis += _chain([P(side * 88, 0, 835), P(side * 60, 25, 885)], 11.0)
    add("bone_marrow", pelvis)
    femora: list[Shape] = []
    for side in (-1, 1):
        femora.append(Ellipsoid(P(side * 90, 2, 835), (24, 24, 24)))
        femora += _chain(
            [P(side * 90, 2, 835), P(side * 115, 5, 875), P(side * 95, 5, 1300)], [16, 15, 13]
        )
    add("bone_cortical", femora)
    humeri = [c for pts in arm_pts for c in _chain(pts[:2], bone_r[:2])]
    add("bone_cortical", humeri)

    # Head and neck
    add("brain", [Ellipsoid(jit(0, 5, 92), size(64, 82, 66))])
    add("pituitary", [Ellipsoid(jit(0, -8, 112), (6.0, 5.0, 4.5))])
    glands: list[Shape] = []
    for side in (-1, 1):
        glands.append(Ellipsoid(jit(side * 50, 10, 165), size(12, 18, 22)))
        glands.append(Ellipsoid(jit(side * 33, -25, 205), size(10, 10, 10)))
    add("salivary_glands", glands)
    thyroid = [Ellipsoid(jit(side * 17, -28, 245), size(9, 10, 22)) for side in (-1, 1)]
    add("thyroid", [*thyroid, Capsule(thyroid[0].c, thyroid[1].c, 4.0)])
    return layers


#: Where each lesion site may be placed: host organs, a box (reference-adult x, y,
#: depth ranges in mm, None = any) and how deep inside the host the centre must lie
#: (fraction of the lesion radius).
@dataclass(frozen=True)
class Site:
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
