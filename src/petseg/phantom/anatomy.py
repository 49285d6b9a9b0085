"""The reference adult: organ labels, body mapping and the painted anatomy layers.

Anatomy is written for a reference adult as positions ``(x, y, depth)`` in mm: ``x``
towards the patient's left, ``y`` posterior (LPS), ``depth`` below the vertex. A
:class:`Body` maps them to LPS with the patient's height and girth scales; organ sizes
and positions are jittered per patient. :func:`anatomy_layers` lists the layers in
painting order, region by region (body outline, abdominal cavity, thorax, upper
abdomen, skeleton, head and neck).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from petseg.phantom.shapes import (
    Capsule,
    Ellipsoid,
    Intersect,
    Layer,
    Shape,
    Shell,
    ZProfile,
    axis_rotation,
)

__all__ = ["LABEL", "ORGANS", "Body", "anatomy_layers"]

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


@dataclass
class Body:
    """Maps reference-adult positions to this patient's LPS mm.

    Organ positions scale with ``0.6 + 0.4·girth`` (the extra girth of a heavier patient
    is mostly fat).

    Attributes
    ----------
    z_vertex : float
        LPS z of the top of the head in mm.
    height : float
        Axial scale (1 = reference adult).
    girth : float
        Scale of the body outline (1 = reference adult).
    """

    z_vertex: float
    height: float
    girth: float

    @property
    def inner(self) -> float:
        """Scale of organ positions and sizes: ``0.6 + 0.4·girth``."""
        return 0.6 + 0.4 * self.girth

    def p(
        self, x: float, y: float, depth: float, outline: bool = False
    ) -> tuple[float, float, float]:
        """This patient's LPS position of a reference-adult position.

        Parameters
        ----------
        x, y : float
            Reference-adult x (patient's left) and y (posterior) in mm.
        depth : float
            Depth below the vertex in mm.
        outline : bool
            Scale x and y with the girth (body outline) instead of :attr:`inner` (organs).

        Returns
        -------
        (3,) tuple of float
            ``(x, y, z)`` in LPS mm.
        """
        s = self.girth if outline else self.inner
        return (x * s, y * s, self.z(depth))

    def z(self, depth: float) -> float:
        """LPS z in mm of a reference-adult depth below the vertex.

        Parameters
        ----------
        depth : float
            Depth below the vertex in mm (scaled by :attr:`height`).

        Returns
        -------
        float
        """
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


class _Builder:
    """Collects the layers of one patient; ``jit`` and ``size`` draw from ``rng``."""

    def __init__(
        self,
        rng: np.random.Generator,
        body: Body,
        suv: dict[str, float],
        hu: dict[str, float],
        fat_mm: float,
    ) -> None:
        self.rng = rng
        self.body = body
        self.suv = suv
        self.hu = hu
        self.fat_mm = fat_mm
        self.outline = _torso(body, 0.0)
        self.inner = _torso(body, fat_mm)
        self.layers: list[Layer] = []

    def jit(self, x: float, y: float, depth: float) -> tuple[float, float, float]:
        """A reference position on this patient, jittered by SD 5 mm per axis."""
        px, py, pz = self.body.p(x, y, depth)
        dx, dy, dz = self.rng.normal(0.0, 5.0, 3)
        return (px + dx, py + dy, pz + dz)

    def size(self, *axes: float) -> tuple[float, ...]:
        """Semi-axes (x, y, z…) in mm scaled to this patient, jittered by ±15 %."""
        f = self.rng.uniform(0.85, 1.15)
        return tuple(a * f * self.body.inner for a in axes[:2]) + tuple(
            a * f * self.body.height for a in axes[2:]
        )

    def add(
        self,
        name: str,
        shapes: Sequence[Shape],
        clip: Shape | None = None,
        value: str | None = None,
    ) -> None:
        """Append a layer of organ ``name`` with the SUV and HU of ``value`` (or ``name``)."""
        key = value or name
        self.layers.append(
            Layer(name, LABEL[name], list(shapes), self.suv[key], self.hu[key], clip)
        )


@dataclass
class _Limbs:
    """What the skeleton needs from the body outline: the head and the arms' course."""

    head: Ellipsoid
    arm_pts: list[list[tuple[float, float, float]]]
    bone_r: list[float]


def _body_outline(b: _Builder, arms: str) -> _Limbs:
    """Fat everywhere in the body outline, then muscle inside the subcutaneous fat."""
    body, fat_mm = b.body, b.fat_mm
    P, Z, g = body.p, body.z, body.girth
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
        bone_r = [13.0, 11.0, 9.0]
    else:
        arm_pts = [
            [P(side * 175, 5, 300, True), P(side * 150, 15, 40), P(side * 60, 20, -120)]
            for side in (-1, 1)
        ]
        arm_r = [45 * g, 40 * g, 34 * g]
        bone_r = [13.0, 12.0, 10.0]
    arm_tubes = [c for pts in arm_pts for c in _chain(pts, arm_r)]
    b.add("fat", [b.outline, head, neck, *thighs, *arm_tubes])
    limb_muscle = [
        ZProfile(t.k.copy(), centre_xy=t.centre_xy, offset=fat_mm * 0.6) for t in thighs
    ] + [c for pts in arm_pts for c in _chain(pts, [r - fat_mm * 0.6 for r in arm_r])]
    b.add("soft_tissue", [b.inner, Ellipsoid(head.c, head.a - 3), neck, *limb_muscle])
    return _Limbs(head, arm_pts, bone_r)


def _abdominal_cavity(b: _Builder) -> None:
    """Visceral fat filling the abdominal cavity, then the bowel and stomach in it."""
    body, jit, inner = b.body, b.jit, b.inner
    b.add(
        "fat",
        [Ellipsoid(body.p(0, -15, 705), (120, 75, 150 * body.height / body.inner))],
        clip=_torso(body, b.fat_mm + 12),
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
    small = _bowel_walk(b.rng, body, body.p(-60, -25, 745), steps=45)
    b.add("bowel", _chain(colon, 20 * body.inner) + _chain(small, 12 * body.inner), clip=inner)
    stomach = Ellipsoid(jit(55, -35, 545), b.size(40, 35, 55), axis_rotation("y", -25))
    b.add("stomach", [stomach], clip=inner)


def _thorax(b: _Builder) -> None:
    """Lungs, heart, aorta and iliac arteries."""
    body, jit, size, P = b.body, b.jit, b.size, b.body.p
    for side, depth in ((-1, 410), (1, 420)):
        lung = Ellipsoid(jit(side * 75, 10, depth), size(62, 82, 125))
        b.add("lungs", [Intersect(lung, (-side, 0, 0), -20 * body.inner)], clip=b.inner)
    heart = Ellipsoid(jit(25, -25, 455), size(58, 48, 52), axis_rotation("z", 30))
    b.add("heart_and_aorta", [heart])
    aorta = [P(0, -10, 370), P(15, 30, 350), P(20, 38, 480), P(8, 32, 720)]
    iliac = [[P(8, 32, 720), P(side * 55, 20, 800)] for side in (-1, 1)]
    b.add("heart_and_aorta", _chain(aorta, 12) + [c for pts in iliac for c in _chain(pts, 7)])


def _upper_abdomen(b: _Builder, bladder_axes: tuple[float, float, float]) -> None:
    """Liver, spleen, pancreas, kidneys, adrenals and the bladder."""
    body, jit, size, rx = b.body, b.jit, b.size, axis_rotation
    liver = [
        Ellipsoid(jit(-62, 5, 550), size(64, 68, 70)),
        Ellipsoid(jit(5, -36, 525), size(52, 32, 32), rx("z", -20)),
    ]
    b.add("liver", liver, clip=b.inner)
    b.add("spleen", [Ellipsoid(jit(95, 45, 535), size(28, 55, 52), rx("z", -40))], clip=b.inner)
    pancreas = [jit(-25, -12, 628), jit(15, -5, 608), jit(65, 5, 588)]
    b.add("pancreas", _chain(pancreas, [15 * body.inner, 12 * body.inner, 10 * body.inner]))
    for side, depth in ((-1, 640), (1, 620)):
        kidney = Ellipsoid(
            jit(side * 72, 50, depth), size(25, 28, 52), rx("z", side * 30) @ rx("y", side * 15)
        )
        b.add("kidneys", [kidney])
        adrenal = Ellipsoid(jit(side * 45, 40, depth - 75), size(6, 14, 18), rx("z", side * 20))
        b.add("adrenals", [adrenal])
    b.add("bladder", [Ellipsoid(jit(0, -40, 835), bladder_axes)], clip=b.inner)


def _spine(b: _Builder) -> None:
    """Vertebral bodies (marrow) and spinous processes of the cervical, thoracic and
    lumbar spine."""
    P, height = b.body.p, b.body.height
    vertebrae: list[Shape] = []
    processes: list[Shape] = []
    # (first and last depth, count, body semi-axes x/y) of cervical, thoracic, lumbar
    for first, last, count, rxy in (
        (178, 268, 7, (11, 9)),
        (290, 550, 12, (15, 13)),
        (578, 765, 5, (22, 17)),
    ):
        half = ((last - first) / (count - 1) / 2 - 3) * height
        for depth in np.linspace(first, last, count):
            y = 15 if first < 270 else 50 + 8 * np.sin(np.pi * min(depth - 270, 290) / 290)
            cx, cy, cz = P(0, y, depth)
            vertebrae.append(
                ZProfile(np.array([[cz - half, *rxy], [cz + half, *rxy]]), centre_xy=(cx, cy))
            )
            tip = P(0, y + rxy[1] + 30, depth + 10)
            processes.append(Capsule((cx, cy + rxy[1], cz), tip, 6.0, 4.0))
    b.add("bone_marrow", vertebrae)
    b.add("bone_cortical", processes)


def _chest_wall(b: _Builder) -> None:
    """Ribs, sternum and clavicles."""
    body, fat_mm, P, Z = b.body, b.fat_mm, b.body.p, b.body.z
    ribs: list[Shape] = []
    for depth in np.linspace(300, 560, 11):
        sx, sy = _torso_semi(body, depth)
        a, c = sx - fat_mm - 14, sy - fat_mm - 10
        for side in (-1, 1):
            angles = np.linspace(0.45 * np.pi, -0.35 * np.pi, 9)
            pts = [
                (side * a * np.cos(t), c * np.sin(t), Z(depth + 45 * (1 - np.sin(t)) / 2))
                for t in angles
            ]
            ribs += _chain(pts, 5.0)
    b.add("bone_cortical", ribs)
    sx, sy = _torso_semi(body, 400)
    sternum = ZProfile(
        np.array([[Z(480), 14, 6], [Z(330), 16, 6]]), centre_xy=(0.0, -(sy - fat_mm - 12))
    )
    b.add("bone_marrow", [sternum])
    clavicles = [Capsule(P(side * 20, -70, 290), P(side * 150, -15, 282), 7.0) for side in (-1, 1)]
    b.add("bone_cortical", clavicles)


def _pelvis_and_limbs(b: _Builder, limbs: _Limbs) -> None:
    """Pelvis (marrow), femora and humeri."""
    P, height, rx = b.body.p, b.body.height, axis_rotation
    pelvis: list[Shape] = [Ellipsoid(P(0, 58, 800), (42, 16, 50 * height), rx("x", -30))]
    for side in (-1, 1):
        pelvis.append(Ellipsoid(P(side * 82, 35, 745), (55, 10, 60 * height), rx("z", side * 35)))
        pelvis += _chain([P(side * 88, 0, 835), P(side * 15, -55, 855)], 10.0)
        pelvis += _chain([P(side * 88, 0, 835), P(side * 60, 25, 885)], 11.0)
    b.add("bone_marrow", pelvis)
    femora: list[Shape] = []
    for side in (-1, 1):
        femora.append(Ellipsoid(P(side * 90, 2, 835), (24, 24, 24)))
        femora += _chain(
            [P(side * 90, 2, 835), P(side * 115, 5, 875), P(side * 95, 5, 1300)], [16, 15, 13]
        )
    b.add("bone_cortical", femora)
    humeri = [c for pts in limbs.arm_pts for c in _chain(pts[:2], limbs.bone_r[:2])]
    b.add("bone_cortical", humeri)


def _head_and_neck(b: _Builder) -> None:
    """Brain, pituitary, salivary glands and thyroid."""
    jit, size = b.jit, b.size
    b.add("brain", [Ellipsoid(jit(0, 5, 92), size(64, 82, 66))])
    b.add("pituitary", [Ellipsoid(jit(0, -8, 112), (6.0, 5.0, 4.5))])
    glands: list[Shape] = []
    for side in (-1, 1):
        glands.append(Ellipsoid(jit(side * 50, 10, 165), size(12, 18, 22)))
        glands.append(Ellipsoid(jit(side * 33, -25, 205), size(10, 10, 10)))
    b.add("salivary_glands", glands)
    thyroid = [Ellipsoid(jit(side * 17, -28, 245), size(9, 10, 22)) for side in (-1, 1)]
    b.add("thyroid", [*thyroid, Capsule(thyroid[0].c, thyroid[1].c, 4.0)])


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
    rng : numpy.random.Generator
        Jitters organ sizes (±15 %) and positions (SD 5 mm), and the bowel course.
    body : Body
        Reference-to-patient mapping.
    suv : dict of str to float
        Activity concentration per organ name (see :data:`ORGANS`), SUVbw in g/mL.
    hu : dict of str to float
        CT number per organ name, in HU.
    arms : str
        ``"up"`` (raised beside the head) or ``"down"`` (beside the trunk).
    fat_mm : float
        Subcutaneous fat thickness in mm.
    bladder_axes : (3,) tuple of float
        Bladder semi-axes (x, y, z) in mm (its filling).

    Returns
    -------
    list of Layer
    """
    if arms not in ("up", "down"):
        raise ValueError(f"arms must be 'up' or 'down', got {arms!r}")
    b = _Builder(rng, body, suv, hu, fat_mm)
    limbs = _body_outline(b, arms)
    _abdominal_cavity(b)
    _thorax(b)
    _upper_abdomen(b, bladder_axes)
    b.add("bone_cortical", [Intersect(Shell(limbs.head, 2.0, 8.0), (0, 0, -1), -body.z(175))])
    _spine(b)
    _chest_wall(b)
    _pelvis_and_limbs(b, limbs)
    _head_and_neck(b)
    return b.layers
