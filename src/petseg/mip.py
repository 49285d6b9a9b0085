"""Maximum-intensity projections of PET with lesion outlines, for a physician's glance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
from numpy.typing import NDArray

from petseg.study import Geometry

__all__ = ["MipOverlay", "mip_projections", "render_mip"]


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

    Returns
    -------
    dict ``{"coronal": (mip (Z, X), labels (Z, X)), "sagittal": (mip (Z, Y), labels (Z, Y))}``.
    The projected label is the label of the voxel that holds the maximum along the ray,
    or, where that voxel is background, the largest label crossed by the ray.
    """
    out = {}
    for name, axis in (("coronal", 1), ("sagittal", 2)):
        argmax = np.argmax(suv, axis=axis)
        mip = np.take_along_axis(suv, np.expand_dims(argmax, axis), axis).squeeze(axis)
        at_max = np.take_along_axis(labels, np.expand_dims(argmax, axis), axis).squeeze(axis)
        any_label = labels.max(axis=axis)
        out[name] = (mip, np.where(at_max > 0, at_max, any_label))
    return out


def _rgb(colour: tuple[int, int, int]) -> tuple[float, float, float]:
    red, green, blue = colour
    return (red / 255, green / 255, blue / 255)


def render_mip(
    path: str | Path,
    suv: NDArray[np.floating],
    labels: NDArray[np.integer],
    geometry: Geometry,
    *,
    title: str = "",
    suv_max_display: float | None = None,
    overlays: Sequence[MipOverlay] = (),
) -> None:
    """Write a PNG: coronal and sagittal PET MIPs (inverted grey, SUV window) with lesion
    outlines in colour, at the true aspect ratio (pixel sizes from ``geometry``).

    ``overlays`` are further structures (the reference VOI) outlined on both projections
    (the outline of their projection) and named in a legend."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    dz, dy, dx = geometry.spacing
    vmax = suv_max_display or max(float(np.percentile(suv, 99.9)), 1.0)
    views = mip_projections(suv, labels)
    cmap = plt.get_cmap("tab10")
    if not isinstance(cmap, ListedColormap):
        raise TypeError(f"expected matplotlib's tab10 to be a ListedColormap, got {type(cmap)}")
    # tab10 stores its ten colours as a tuple of RGB tuples; the stubs type ``colors``
    # as any array-like.
    palette = cast("Sequence[tuple[float, float, float]]", cmap.colors)
    widths = [views["coronal"][0].shape[1] * dx, views["sagittal"][0].shape[1] * dy]
    height = suv.shape[0] * dz
    fig, axes = plt.subplots(
        1, 2, figsize=(8, 8 * height / sum(widths) + 0.8), gridspec_kw={"width_ratios": widths}
    )
    # Axis 0 of the volume runs inferior→superior for axial series sorted by position, so
    # flip it for display (head at the top) when the slice axis points to +z.
    flip = geometry.affine[2, 0] > 0
    for ax, (name, (mip, lab)), pixel, axis in zip(
        axes, views.items(), (dx, dy), (1, 2), strict=True
    ):
        if flip:
            mip, lab = mip[::-1], lab[::-1]
        extent = (0, mip.shape[1] * pixel, 0, mip.shape[0] * dz)
        ax.imshow(mip, cmap="Greys", vmin=0, vmax=vmax, extent=extent, interpolation="nearest")
        for level in np.unique(lab[lab > 0]):
            colour = palette[(int(level) - 1) % len(palette)]
            ax.contour(
                lab == level,
                levels=[0.5],
                colors=[colour],
                linewidths=1.4,
                extent=extent,
                origin="upper",
            )
        for overlay in overlays:
            shadow = np.asarray(np.asarray(overlay.mask, dtype=bool).any(axis=axis))
            if flip:
                shadow = shadow[::-1]
            if shadow.any():
                ax.contour(
                    shadow,
                    levels=[0.5],
                    colors=[_rgb(overlay.colour)],
                    linewidths=1.4,
                    linestyles="dashed",
                    extent=extent,
                    origin="upper",
                )
        ax.set_title(f"{name} MIP (SUV 0–{vmax:.1f} g/mL)", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if overlays:
        from matplotlib.lines import Line2D

        handles = [
            Line2D([], [], color=_rgb(o.colour), linestyle="dashed", label=o.name) for o in overlays
        ]
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04 if overlays else 0, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
