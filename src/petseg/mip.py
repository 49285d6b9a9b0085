"""Maximum-intensity projections of PET with lesion outlines, for a physician's glance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from petseg.study import Geometry

__all__ = ["LESION_COLOURS", "MipOverlay", "mip_picture", "mip_projections", "render_mip"]


@dataclass(frozen=True)
class MipOverlay:
    """A structure outlined on both projections and named in the legend.

    Attributes
    ----------
    mask : (Z, Y, X) bool ndarray on the PET grid (e.g. the reference VOI)
    colour : RGB bytes of its outline
    name : what the legend calls it ("liver reference VOI")
    """

    mask: NDArray[np.bool_]
    colour: tuple[int, int, int]
    name: str


def mip_projections(
    suv: NDArray[np.floating], labels: NDArray[np.integer]
) -> dict[str, tuple[NDArray[np.floating], NDArray[np.integer]]]:
    """Coronal and sagittal MIPs of SUV with the label seen at each ray's maximum.

    Parameters
    ----------
    suv : (Z, Y, X) float ndarray
        PET in SUVbw (g/mL).
    labels : (Z, Y, X) int ndarray
        Lesion labels on the same grid (0 is background).

    Returns
    -------
    dict of str to tuple of ndarray
        ``{"coronal": (mip (Z, X), labels (Z, X)), "sagittal": (mip (Z, Y), labels (Z, Y))}``.
        The projected label is the label of the voxel that holds the maximum along the
        ray, or, where that voxel is background, the largest label crossed by the ray.
    """
    out = {}
    for name, axis in (("coronal", 1), ("sagittal", 2)):
        any_label = labels.max(axis=axis)
        projected = any_label.copy()
        # only rays that cross a label need the position of their maximum
        rows, cols = np.nonzero(any_label)
        first_max = np.moveaxis(suv, axis, -1)[rows, cols].argmax(axis=1)
        at_max = np.moveaxis(labels, axis, -1)[rows, cols, first_max]
        projected[rows, cols] = np.where(at_max > 0, at_max, any_label[rows, cols])
        out[name] = (suv.max(axis=axis), projected)
    return out


#: Lesion outline colours (RGB bytes), label L drawn in ``LESION_COLOURS[(L - 1) % 10]``:
#: matplotlib's "tab10" palette.
LESION_COLOURS = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)
#: The inverted grey ramp (ColorBrewer "Greys", 9 stops, as matplotlib's "Greys"):
#: SUV 0 is white, the window's top black.
GREYS = (255, 240, 217, 189, 150, 115, 82, 37, 0)
#: Picture width in pixels; panels keep the true aspect ratio (square millimetres).
WIDTH_PX = 880
_MARGIN = 16
_TITLE_PX = 46
_LEGEND_PX = 34
_OUTLINE_PX = 2
_DASH_PX = 6


def mip_picture(
    suv: NDArray[np.floating],
    labels: NDArray[np.integer],
    geometry: Geometry,
    *,
    title: str = "",
    suv_max_display: float | None = None,
    overlays: Sequence[MipOverlay] = (),
) -> NDArray[np.uint8]:
    """Coronal and sagittal PET MIPs side by side, as an RGB picture.

    Each panel shows the MIP in inverted grey over the SUV window ``0..vmax`` (white = 0),
    at the true aspect ratio, head at the top; every projected lesion outlined in its
    colour (:data:`LESION_COLOURS`); each overlay (the reference VOI) as a dashed outline
    of its projection in its own colour, named in a legend below. Above: ``title`` and each
    panel's name with the SUV window.

    Parameters
    ----------
    suv : (Z, Y, X) float ndarray, SUVbw in g/mL
    labels : (Z, Y, X) int ndarray, lesion labels (0 = background)
    geometry : Geometry, the grid (spacing in mm sets the aspect; the affine the head side)
    title : str, the first line
    suv_max_display : float, optional, the window's top in g/mL (default the 99.9th
        percentile of ``suv``, at least 1)
    overlays : sequence of MipOverlay

    Returns
    -------
    (H, W, 3) uint8 ndarray, ``W`` = :data:`WIDTH_PX`
    """
    from PIL import Image, ImageDraw

    dz, dy, dx = geometry.spacing
    vmax = suv_max_display or max(float(np.percentile(suv, 99.9)), 1.0)
    views = mip_projections(suv, labels)
    widths_mm = (suv.shape[2] * dx, suv.shape[1] * dy)
    px_per_mm = (WIDTH_PX - 3 * _MARGIN) / sum(widths_mm)
    height = max(round(suv.shape[0] * dz * px_per_mm), 1)
    legend = _LEGEND_PX if overlays else 0
    canvas = np.full((_TITLE_PX + height + _MARGIN + legend, WIDTH_PX, 3), 255, np.uint8)
    # Axis 0 of the volume runs inferior→superior for axial series sorted by position, so
    # flip it for display (head at the top) when the slice axis points to +z.
    flip = geometry.affine[2, 0] > 0
    left = _MARGIN
    for (mip, lab), width_mm, axis in zip(views.values(), widths_mm, (1, 2), strict=True):
        shadows = [np.asarray(np.any(o.mask, axis=axis), dtype=bool) for o in overlays]
        if flip:
            mip, lab, shadows = mip[::-1], lab[::-1], [s[::-1] for s in shadows]
        size = (height, max(round(width_mm * px_per_mm), 1))
        panel = _panel(_resize(mip, size), _resize(lab, size), vmax)
        for overlay, shadow in zip(overlays, shadows, strict=True):
            edge = _outline(_resize(shadow, size).astype(np.int32))
            rows, cols = np.nonzero(edge)
            dashes = ((rows + cols) // _DASH_PX) % 2 == 0
            panel[rows[dashes], cols[dashes]] = overlay.colour
        top = _TITLE_PX
        canvas[top - 1 : top + size[0] + 1, left - 1 : left + size[1] + 1] = 0
        canvas[top : top + size[0], left : left + size[1]] = panel
        left += size[1] + _MARGIN
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    font, small = _font(14), _font(12)
    draw.text((WIDTH_PX / 2, 4), title, fill=(0, 0, 0), font=font, anchor="ma")
    left = _MARGIN
    for name, width_mm in zip(views, widths_mm, strict=True):
        width = max(round(width_mm * px_per_mm), 1)
        label = f"{name} MIP (SUV 0–{vmax:.1f} g/mL)"
        draw.text((left + width / 2, 26), label, fill=(0, 0, 0), font=small, anchor="ma")
        left += width + _MARGIN
    _legend(draw, overlays, small, y=_TITLE_PX + height + _MARGIN + 8)
    return np.asarray(image)


def render_mip(
    path: str | Path,
    suv: NDArray[np.floating],
    labels: NDArray[np.integer],
    geometry: Geometry,
    **options: Any,
) -> None:
    """Write ``mip_picture(suv, labels, geometry, **options)`` to ``path`` as PNG.

    Parameters
    ----------
    path : str or Path, the PNG file
    suv, labels, geometry, options : as for :func:`mip_picture` (``title``,
        ``suv_max_display``, ``overlays``)
    """
    from PIL import Image

    picture = mip_picture(suv, labels, geometry, **options)
    Image.fromarray(picture).save(path, format="PNG", compress_level=1)


def _resize(image: NDArray[Any], size: tuple[int, int]) -> NDArray[Any]:
    """Nearest-neighbour resampling of a 2D array to ``size`` (rows, columns)."""
    rows = (np.arange(size[0]) + 0.5) * image.shape[0] // size[0]
    cols = (np.arange(size[1]) + 0.5) * image.shape[1] // size[1]
    return image[rows.astype(int)[:, None], cols.astype(int)[None, :]]


def _panel(mip: NDArray[np.floating], lab: NDArray[np.integer], vmax: float) -> NDArray[np.uint8]:
    """Inverted grey MIP (0 → white, ``vmax`` → black) with each label's outline."""
    level = np.clip(mip / vmax, 0.0, 1.0)
    grey = np.round(np.interp(level, np.linspace(0, 1, len(GREYS)), GREYS)).astype(np.uint8)
    panel = np.repeat(grey[:, :, None], 3, axis=2)
    edge = _outline(lab)
    palette = np.asarray(LESION_COLOURS, dtype=np.uint8)
    panel[edge] = palette[(lab[edge] - 1) % len(palette)]
    return panel


def _outline(lab: NDArray[np.integer]) -> NDArray[np.bool_]:
    """Pixels of a label (> 0) within ``_OUTLINE_PX`` of a pixel of another value."""
    edge = np.zeros(lab.shape, dtype=bool)
    for shift in range(1, _OUTLINE_PX + 1):
        edge[shift:] |= lab[shift:] != lab[:-shift]
        edge[:-shift] |= lab[:-shift] != lab[shift:]
        edge[:, shift:] |= lab[:, shift:] != lab[:, :-shift]
        edge[:, :-shift] |= lab[:, :-shift] != lab[:, shift:]
    border = np.ones(lab.shape, dtype=bool)
    border[_OUTLINE_PX:-_OUTLINE_PX, _OUTLINE_PX:-_OUTLINE_PX] = False
    return (edge | border) & (lab > 0)


def _font(size: int) -> Any:
    """DejaVu Sans (shipped with matplotlib; it has the en dash of the SUV window) at
    ``size`` pixels, or Pillow's default font where matplotlib's files are not found."""
    from importlib.util import find_spec

    from PIL import ImageFont

    spec = find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


def _legend(draw: Any, overlays: Sequence[MipOverlay], font: Any, y: int) -> None:
    """Dashed line samples and names of the overlays, centred on one row."""
    if not overlays:
        return
    names = [f"  {o.name}" for o in overlays]
    widths = [3 * _DASH_PX + draw.textlength(n, font=font) + 2 * _MARGIN for n in names]
    x = (WIDTH_PX - sum(widths)) / 2
    for overlay, name, width in zip(overlays, names, widths, strict=True):
        for start in range(0, 3 * _DASH_PX, 2 * _DASH_PX):
            draw.line(
                [(x + start, y + 8), (x + start + _DASH_PX, y + 8)],
                fill=overlay.colour,
                width=_OUTLINE_PX,
            )
        draw.text((x + 3 * _DASH_PX, y), name, fill=(0, 0, 0), font=font)
        x += width
