"""RTSTRUCT import: the real GTVs against the README table, small hand cases, the CLI."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest

from petseg.cli import EXIT_USER_ERROR, main
from petseg.cli import import_ as import_cli
from petseg.io import discover_series, read_nifti, read_rtstruct, read_series
from petseg.io.atomic import OutputExistsError
from petseg.io.rtstruct import RtstructError, import_rtstruct, rasterise_contours
from petseg.study import Geometry


def gtv_table(readme: Path) -> dict[str, tuple[int, float, float]]:
    """GTV voxels, SUVmax, SUVmean per patient from sts-pet/README.md."""
    rows = {}
    for line in readme.read_text().splitlines():
        m = re.match(r"^\| (STS_\d+) \|.*\| (\d+) \| ([\d.]+) \| ([\d.]+) \|[^|]*\|$", line)
        if m:
            rows[m[1]] = (int(m[2]), float(m[3]), float(m[4]))
    return rows


def test_gtv_matches_readme_exactly(real_data: Path, sts_study, sts_patient: str) -> None:
    voxels, suv_max, suv_mean = gtv_table(real_data / "sts-pet" / "README.md")[sts_patient]
    folder = sts_study(sts_patient)
    (pet,) = [s for s in discover_series(folder) if s.modality == "PT"]
    volume = read_series(pet)
    # README: plausibility of values already in SUV (min ~0, small median in the crop).
    assert 0.0 <= volume.array.min() < 0.001
    assert 0.005 < float(np.median(volume.array)) < 1.0
    masks = read_rtstruct(
        folder / "pet-rtstruct.dcm",
        volume.geometry,
        "GTV_Mass_PET",
        frame_of_reference_uid=pet.frame_of_reference_uid,
    )
    gtv = masks["GTV_Mass_PET"]
    assert int(gtv.sum()) == voxels  # exact voxel count
    assert round(float(volume.array[gtv].max()), 2) == suv_max
    assert round(float(volume.array[gtv].mean()), 2) == suv_mean


def test_square_with_hole_by_hand() -> None:
    # 1 slice of 10x10 voxels, 1 mm, origin 0: voxel centres at integer mm.
    geometry = Geometry.from_spacing((1, 10, 10), (1.0, 1.0, 1.0))
    outer = np.array([[1.5, 1.5, 0], [7.5, 1.5, 0], [7.5, 7.5, 0], [1.5, 7.5, 0]])
    inner = np.array([[3.5, 3.5, 0], [5.5, 3.5, 0], [5.5, 5.5, 0], [3.5, 5.5, 0]])
    mask = rasterise_contours([outer, inner], geometry)
    # Outer square holds centres 2..7 in x and y: 36 voxels; the hole holds 4..5: 4 voxels.
    assert mask.sum() == 36 - 4
    assert mask[0, 2, 2] and not mask[0, 4, 4] and not mask[0, 1, 1]
    # x runs along columns (axis 2): a rectangle 2 voxels wide in x, 5 tall in y.
    rect = np.array([[1.5, 0.5, 0], [3.5, 0.5, 0], [3.5, 5.5, 0], [1.5, 5.5, 0]])
    rmask = rasterise_contours([rect], geometry)[0]
    assert rmask.sum() == 10 and rmask[1:6, 2:4].all()


def test_plane_tolerance_and_clipping() -> None:
    geometry = Geometry.from_spacing((3, 6, 6), (2.0, 1.0, 1.0))  # slices at z = 0, 2, 4
    square = np.array([[0.5, 0.5], [2.5, 0.5], [2.5, 2.5], [0.5, 2.5]])
    near = np.column_stack([square, np.full(4, 2.9)])  # 0.9 mm from z=2: within half spacing
    outside = np.column_stack([square, np.full(4, 7.0)])  # beyond the last slice: dropped
    mask = rasterise_contours([near, outside], geometry)
    assert mask.sum() == 4 and mask[1].sum() == 4


def test_contour_across_slices_is_refused() -> None:
    geometry = Geometry.from_spacing((3, 6, 6), (2.0, 1.0, 1.0))
    tilted = np.array([[0.5, 0.5, 0.0], [2.5, 0.5, 0.0], [2.5, 2.5, 3.0]])
    with pytest.raises(RtstructError, match="not parallel"):
        rasterise_contours([tilted], geometry)


def test_unknown_roi_lists_available(sts_study) -> None:
    folder = sts_study("STS_019")
    (pet,) = [s for s in discover_series(folder) if s.modality == "PT"]
    geometry = read_series(pet).geometry
    with pytest.raises(
        RtstructError,
        match=r"'GTV_Mass' is not in.*available ROIs: \['GTV_Mass_PET'\].*did you mean",
    ):
        read_rtstruct(folder / "pet-rtstruct.dcm", geometry, "GTV_Mass")
    with pytest.raises(RtstructError, match="does not belong to this image"):
        read_rtstruct(folder / "pet-rtstruct.dcm", geometry, frame_of_reference_uid="1.2.3")


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="petseg")
    import_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_cli_import_rtstruct_writes_mask_and_legend(sts_study, tmp_path: Path) -> None:
    out = tmp_path / "gtv.nii.gz"
    folder = sts_study("STS_019")
    argv = ["import", "rtstruct", str(folder / "pet-rtstruct.dcm"),
            "--reference", str(folder), "--out", str(out)]  # fmt: skip
    assert _cli(argv) == 0
    labels, geometry = read_nifti(out)
    assert int((labels == 1).sum()) == 239  # README: STS_019 GTV voxels
    assert geometry.shape == (47, 28, 28)
    legend = json.loads((tmp_path / "gtv.json").read_text())
    assert legend["labels"][0]["roi_name"] == "GTV_Mass_PET"
    assert legend["labels"][0]["volume_ml"] == pytest.approx(
        239 * 4.6875**2 * 3.27 / 1000, rel=1e-4
    )
    assert "petseg_version" in legend
    with pytest.raises(OutputExistsError, match="--force"):
        _cli(argv)
    assert _cli([*argv, "--force", "--roi", "GTV_Mass_PET"]) == 0


def test_structure_set_of_another_patient_is_refused(sts_study, tmp_path: Path) -> None:
    """STS_019's GTV against a NIfTI of STS_004 (no UIDs to compare): its contours lie
    60 cm away from that grid, so nothing would be filled; refused instead."""
    from petseg.io import load_study, write_nifti

    other = load_study(sts_study("STS_004"))
    reference = write_nifti(tmp_path / "sts004.nii.gz", other.pet, other.geometry)
    rtstruct = sts_study("STS_019") / "pet-rtstruct.dcm"
    with pytest.raises(RtstructError, match=r"GTV_Mass_PET.*none of its \d+ contour points"):
        import_rtstruct(rtstruct, reference, tmp_path / "gtv.nii.gz")
    assert not (tmp_path / "gtv.nii.gz").exists()


def test_contour_of_an_undefined_roi_is_refused(sts_study, tmp_path: Path) -> None:
    ds = pydicom.dcmread(sts_study("STS_019") / "pet-rtstruct.dcm")
    ds.ROIContourSequence[0].ReferencedROINumber = 99
    ds.save_as(tmp_path / "rs.dcm")
    with pytest.raises(RtstructError, match=r"rs\.dcm: .*ROI Number 99.*ROI numbers: \[1\]"):
        import_rtstruct(tmp_path / "rs.dcm", sts_study("STS_019"), tmp_path / "gtv.nii.gz")


def test_non_dicom_file_is_one_line_naming_it(sts_study, tmp_path: Path, capsys) -> None:
    (tmp_path / "notes.dcm").write_text("not DICOM")
    argv = ["import", "rtstruct", str(tmp_path / "notes.dcm"),
            "--reference", str(sts_study("STS_019")), "--out", str(tmp_path / "gtv.nii.gz")]  # fmt: skip
    assert main(argv) == EXIT_USER_ERROR
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "notes.dcm is not a readable DICOM file" in err
