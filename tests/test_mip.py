"""MIP projections and the MIP picture: grey window, outlines, overlay, aspect and orientation."""

import numpy as np
from PIL import Image

from petseg.mip import (
    GREYS,
    LESION_COLOURS,
    WIDTH_PX,
    MipOverlay,
    mip_picture,
    mip_projections,
    render_mip,
)
from petseg.study import Geometry

MAGENTA = (255, 0, 255)


def test_projections_take_the_label_at_the_maximum_or_the_largest_crossed():
    suv = np.zeros((1, 2, 3), np.float32)
    labels = np.zeros((1, 2, 3), np.int32)
    suv[0, :, 0] = (1.0, 5.0)
    labels[0, 0, 0] = 3  # not at the ray's maximum (5.0 is background)
    suv[0, :, 1] = (7.0, 2.0)
    labels[0, :, 1] = (4, 9)  # at the maximum: 4 wins over the larger 9
    views = mip_projections(suv, labels)
    mip, lab = views["coronal"]
    assert mip.tolist() == [[5.0, 7.0, 0.0]]
    assert lab.tolist() == [[3, 4, 0]]
    # along x: row y=0 peaks at 7.0 (label 4); row y=1 peaks at 5.0 (background), crossing 9
    mip, lab = views["sagittal"]
    assert mip.tolist() == [[7.0, 5.0]]
    assert lab.tolist() == [[4, 9]]


def test_projections_equal_the_argmax_formulation_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        suv = rng.random((7, 8, 9)).astype(np.float32)
        suv[rng.random(suv.shape) < 0.3] = 1.0  # many rays hold several maxima
        labels = (rng.random(suv.shape) < 0.2) * rng.integers(1, 5, suv.shape)
        views = mip_projections(suv, labels)
        for name, axis in (("coronal", 1), ("sagittal", 2)):
            first = np.expand_dims(np.argmax(suv, axis=axis), axis)
            at_max = np.take_along_axis(labels, first, axis).squeeze(axis)
            expected = np.where(at_max > 0, at_max, labels.max(axis=axis))
            assert np.array_equal(
                views[name][0], np.take_along_axis(suv, first, axis).squeeze(axis)
            )
            assert np.array_equal(views[name][1], expected)


def colours(picture: np.ndarray) -> set[tuple[int, int, int]]:
    return {tuple(int(v) for v in c) for c in np.unique(picture.reshape(-1, 3), axis=0)}


def block_study() -> tuple[np.ndarray, np.ndarray, Geometry]:
    """40 slices of 30 x 20 voxels (dz 4, dy 2, dx 3 mm): SUV 1 everywhere, a hot lesion
    (SUV 8, label 1) in the top (high-z) slices, a warm lesion (label 2) at the bottom."""
    suv = np.ones((40, 30, 20), np.float32)
    labels = np.zeros(suv.shape, np.int32)
    suv[30:36, 10:16, 8:12] = 8.0
    labels[30:36, 10:16, 8:12] = 1
    suv[4:8, 10:16, 8:12] = 3.0
    labels[4:8, 10:16, 8:12] = 2
    return suv, labels, Geometry.from_spacing(suv.shape, (4.0, 2.0, 3.0))


def test_picture_window_outlines_and_aspect():
    suv, labels, geometry = block_study()
    picture = mip_picture(suv, labels, geometry, title="t", suv_max_display=8.0)
    assert picture.shape[1] == WIDTH_PX and picture.dtype == np.uint8
    found = colours(picture)
    assert LESION_COLOURS[0] in found and LESION_COLOURS[1] in found
    assert (0, 0, 0) in found  # SUV 8 = the window's top is black
    # SUV 1 of 8: 1/8 of the way along the 9-stop ramp, between its first two stops
    background = round(GREYS[0] + (GREYS[1] - GREYS[0]) * (1 / 8) * (len(GREYS) - 1))
    assert (background,) * 3 in found
    assert MAGENTA not in found
    # the panels keep the true aspect: 160 mm high, 60 mm + 60 mm wide, on 880 - 48 px
    px_per_mm = (WIDTH_PX - 48) / 120
    assert picture.shape[0] >= round(160 * px_per_mm)
    # lesion 1 (high z) is drawn above lesion 2: head up for a +z slice axis
    assert rows_of(picture, LESION_COLOURS[0]) < rows_of(picture, LESION_COLOURS[1])


def rows_of(picture: np.ndarray, colour: tuple[int, int, int]) -> float:
    return float(np.nonzero((picture == colour).all(axis=2))[0].mean())


def test_picture_flips_nothing_for_a_slice_axis_towards_minus_z():
    suv, labels, geometry = block_study()
    affine = geometry.affine.copy()
    affine[2, 0] = -affine[2, 0]
    picture = mip_picture(suv, labels, Geometry(affine, geometry.shape), suv_max_display=8.0)
    assert rows_of(picture, LESION_COLOURS[0]) > rows_of(picture, LESION_COLOURS[1])


def test_overlay_is_drawn_dashed_in_its_colour_and_named():
    suv, labels, geometry = block_study()
    voi = np.zeros(suv.shape, bool)
    voi[15:25, 5:25, 3:17] = True
    overlay = MipOverlay(voi, MAGENTA, "liver reference VOI")
    plain = mip_picture(suv, labels, geometry)
    picture = mip_picture(suv, labels, geometry, overlays=[overlay])
    magenta = (picture == MAGENTA).all(axis=2)
    assert magenta.any()
    assert picture.shape[0] > plain.shape[0]  # the legend row


def test_render_mip_writes_the_picture_as_png(tmp_path):
    suv, labels, geometry = block_study()
    path = tmp_path / "mip.png"
    render_mip(path, suv, labels, geometry, title="a title", suv_max_display=8.0)
    written = np.asarray(Image.open(path).convert("RGB"))
    expected = mip_picture(suv, labels, geometry, title="a title", suv_max_display=8.0)
    assert np.array_equal(written, expected)
