"""NIfTI round trips (checked against nibabel's own apply_affine) and resampling by hand."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel.affines import apply_affine

from petseg.io import read_nifti, resample_to_grid, write_nifti
from petseg.io.atomic import OutputExistsError
from petseg.io.nifti import read_nifti_geometry
from petseg.io.resample import fov_overlap_fraction
from petseg.study import Geometry


def _rotation(angle_deg: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])


def _geometries() -> dict[str, Geometry]:
    flipped = np.eye(4)
    flipped[:3, 0] = (0, 0, -3.0)  # feet-first: slices run towards -z
    flipped[:3, 1] = (0, -2.0, 0)
    flipped[:3, 2] = (-1.5, 0, 0)
    flipped[:3, 3] = (100.0, 50.0, 200.0)
    oblique = np.eye(4)
    oblique[:3, :3] = _rotation(30) @ np.array([[0, 0, 1.5], [0, 2.0, 0], [3.0, 0, 0]])
    oblique[:3, 3] = (-20.0, 10.0, -300.0)
    return {
        "axial": Geometry.from_spacing((4, 5, 6), (3.0, 2.0, 1.5), (-10.0, 20.0, -300.0)),
        "flipped": Geometry(flipped, (4, 5, 6)),
        "oblique": Geometry(oblique, (4, 5, 6)),
    }


@pytest.mark.parametrize("name", ["axial", "flipped", "oblique"])
def test_round_trip_and_positions_agree_with_nibabel(name: str, tmp_path: Path) -> None:
    geometry = _geometries()[name]
    array = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    path = write_nifti(tmp_path / "a.nii.gz", array, geometry)
    back, back_geometry = read_nifti(path)
    np.testing.assert_array_equal(back, array)
    assert back_geometry.same_grid(geometry, atol_mm=1e-5)
    # Independent: nibabel's data[i, j, k] sits at apply_affine(affine, (i, j, k)) in RAS;
    # petseg's array[k, j, i] must hold the same value at the same point in LPS.
    img = nib.load(path)
    data = np.asanyarray(img.dataobj)
    for k, j, i in [(0, 0, 0), (3, 4, 5), (1, 2, 3), (2, 0, 5)]:
        ras = apply_affine(img.affine, (i, j, k))
        lps = geometry.index_to_patient((k, j, i))
        np.testing.assert_allclose(lps, ras * (-1, -1, 1), atol=1e-4)
        assert data[i, j, k] == array[k, j, i]
    assert int(img.header["sform_code"]) == 1 and int(img.header["qform_code"]) == 1


def test_bool_and_int64_types_and_force(tmp_path: Path) -> None:
    geometry = _geometries()["axial"]
    mask = np.zeros(geometry.shape, bool)
    mask[1, 2, 3] = True
    path = write_nifti(tmp_path / "m.nii.gz", mask, geometry)
    back, _ = read_nifti(path)
    assert back.dtype == np.uint8 and back.sum() == 1 and back[1, 2, 3] == 1
    with pytest.raises(OutputExistsError, match="--force"):
        write_nifti(path, mask, geometry)
    write_nifti(path, mask.astype(np.int64) * 7, geometry, force=True)
    back, _ = read_nifti(path)
    assert back.dtype == np.int32 and back[1, 2, 3] == 7
    with pytest.raises(ValueError, match="does not match the geometry"):
        write_nifti(tmp_path / "x.nii.gz", mask[:2], geometry)


def test_single_volume_4d_is_accepted_and_5_frames_refused(tmp_path: Path) -> None:
    nib.save(nib.Nifti1Image(np.ones((6, 5, 4, 1), np.float32), np.eye(4)), tmp_path / "a.nii")
    array, geometry = read_nifti(tmp_path / "a.nii")
    assert array.shape == (4, 5, 6) == geometry.shape
    nib.save(nib.Nifti1Image(np.ones((6, 5, 4, 5), np.float32), np.eye(4)), tmp_path / "b.nii")
    with pytest.raises(ValueError, match=r"b\.nii.*3D image"):
        read_nifti(tmp_path / "b.nii")


def _saved(tmp_path: Path, name: str, image: nib.Nifti1Image) -> Path:
    nib.save(image, tmp_path / name)
    return tmp_path / name


def test_images_without_known_voxel_positions_are_refused(tmp_path: Path) -> None:
    """nibabel reads these with a guessed affine (voxel sizes only, or a shear no scanner
    writes); petseg refuses them, naming the file and the fix."""
    values = np.ones((6, 5, 4), np.float32)
    sheared = np.diag([2.0, 2.0, 3.0, 1.0])
    sheared[0, 1] = 1.0  # x moves with j: axes i and j at 63.4°, cosine 0.447
    with pytest.raises(ValueError, match=r"s\.nii\.gz: the affine is sheared.*cosine 0\.447"):
        read_nifti(_saved(tmp_path, "s.nii.gz", nib.Nifti1Image(values, sheared)))
    uncoded = nib.Nifti1Image(values, np.diag([2.0, 2.0, 3.0, 1.0]))
    uncoded.set_sform(None, code=0)
    uncoded.set_qform(None, code=0)
    path = _saved(tmp_path, "u.nii.gz", uncoded)
    for reader in (read_nifti, read_nifti_geometry):
        with pytest.raises(ValueError, match=r"u\.nii\.gz: qform_code and sform_code are both 0"):
            reader(path)


def test_truncated_and_single_slice_images_are_one_line(tmp_path: Path) -> None:
    geometry = Geometry.from_spacing((20, 20, 20), (2.0, 2.0, 2.0))
    noise = np.random.default_rng(0).random(geometry.shape, np.float32)  # 32 kB, incompressible
    data = write_nifti(tmp_path / "a.nii.gz", noise, geometry).read_bytes()
    (tmp_path / "t.nii.gz").write_bytes(data[: len(data) * 3 // 4])  # header whole, data cut
    with pytest.raises(ValueError, match=r"t\.nii\.gz: the image data cannot be read.*truncated"):
        read_nifti(tmp_path / "t.nii.gz")
    (tmp_path / "h.nii.gz").write_bytes(data[:100])  # header cut
    with pytest.raises(ValueError, match=r"h\.nii\.gz is not a readable NIfTI image.*truncated"):
        read_nifti(tmp_path / "h.nii.gz")
    flat = Geometry.from_spacing((1, 5, 6), (3.0, 2.0, 1.5))
    path = write_nifti(tmp_path / "f.nii.gz", np.ones(flat.shape, np.float32), flat)
    with pytest.raises(ValueError, match=r"f\.nii\.gz has shape \(6, 5, 1\): a single slice"):
        read_nifti(path)


def test_resample_linear_shift_and_fill_by_hand() -> None:
    src = Geometry.from_spacing((1, 1, 4), (1.0, 1.0, 2.0))  # x centres 0, 2, 4, 6 mm
    dst = Geometry.from_spacing((1, 1, 4), (1.0, 1.0, 2.0), origin=(1.0, 0.0, 0.0))  # 1,3,5,7
    values = np.array([[[0.0, 10.0, 20.0, 40.0]]])
    out = resample_to_grid(values, src, dst)
    # Halfway between neighbours: means 5, 15, 30; x = 7 mm is inside the last voxel
    # (centre 6 mm, edge 7 mm): the edge value 40 is extended.
    np.testing.assert_allclose(out[0, 0], [5.0, 15.0, 30.0, 40.0])
    # x = 7.5 mm and 9.5 mm lie beyond the source volume's edge (7 mm): fill -1024 HU.
    beyond = Geometry.from_spacing((1, 1, 2), (1.0, 1.0, 2.0), origin=(7.5, 0.0, 0.0))
    np.testing.assert_allclose(resample_to_grid(values, src, beyond)[0, 0], [-1024.0, -1024.0])
    # Nearest neighbour at x = 2.6, 4.6, 6.6, 8.6 mm = source indices 1.3, 2.3, 3.3, 4.3.
    shifted = Geometry.from_spacing((1, 1, 4), (1.0, 1.0, 2.0), origin=(2.6, 0.0, 0.0))
    nearest = resample_to_grid(values, src, shifted, order=0, fill=0)
    np.testing.assert_allclose(nearest[0, 0], [10.0, 20.0, 40.0, 0.0])


def test_resample_onto_flipped_grid_reverses_the_axis() -> None:
    src = Geometry.from_spacing((3, 2, 2), (2.0, 1.0, 1.0))  # z = 0, 2, 4
    flip = src.affine.copy()
    flip[:3, 0] = (0, 0, -2.0)
    flip[:3, 3] = (0, 0, 4.0)  # z = 4, 2, 0
    values = np.arange(12, dtype=np.float32).reshape(3, 2, 2)
    out = resample_to_grid(values, src, Geometry(flip, (3, 2, 2)))
    np.testing.assert_allclose(out, values[::-1], atol=1e-5)


def test_fov_overlap() -> None:
    a = Geometry.from_spacing((10, 10, 10), (1.0, 1.0, 1.0))
    half = Geometry.from_spacing((10, 10, 10), (1.0, 1.0, 1.0), origin=(5.0, 0, 0))
    far = Geometry.from_spacing((10, 10, 10), (1.0, 1.0, 1.0), origin=(0, 0, 500.0))
    assert fov_overlap_fraction(a, a) == pytest.approx(1.0)
    assert fov_overlap_fraction(a, half) == pytest.approx(0.5)  # 5 of 10 mm in x
    assert fov_overlap_fraction(a, far) == 0.0


def test_write_nifti_gzip_level_and_same_bytes_for_the_same_array(tmp_path):
    import gzip

    from petseg.io.nifti import NIFTI_COMPRESSLEVEL

    array = np.zeros((20, 30, 40), np.float32)
    array[5:15, 10:20, 10:30] = np.linspace(0, 1, 2000, dtype=np.float32).reshape(10, 10, 20)
    geometry = Geometry.from_spacing(array.shape, (3.0, 2.0, 2.0))
    paths = [tmp_path / f"{name}.nii.gz" for name in ("a", "b", "fastest")]
    write_nifti(paths[0], array, geometry)
    write_nifti(paths[1], array, geometry)
    write_nifti(paths[2], array, geometry, compresslevel=0)
    assert NIFTI_COMPRESSLEVEL == 1
    assert paths[0].read_bytes() == paths[1].read_bytes()  # no time stamp in the gzip header
    # a standard gzip stream of the 352-byte header and 96,000 bytes of voxels; ISA-L's
    # level 0 is Huffman coding alone, so it is larger than level 1
    for path in paths:
        assert len(gzip.decompress(path.read_bytes())) == 352 + array.nbytes
    assert paths[2].stat().st_size > paths[0].stat().st_size
    with pytest.raises(ValueError, match="ISA-L gzip level 0-3, got 6"):
        write_nifti(tmp_path / "c.nii.gz", array, geometry, compresslevel=6)
    for path in paths:
        back, _ = read_nifti(path)
        assert np.array_equal(back, array)
