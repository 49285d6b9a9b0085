"""Review logic without HTTP: cohort status, Table 4 / Fig. 4 summary, CLI wiring."""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

import pytest

from petseg.review.cases import CaseData, Cohort
from petseg.review.errors import CaseNotFoundError
from petseg.review.scoring import summarise_reviews
from petseg.review.session import CaseSession

from .conftest import SEED_C


def _minutes_ago(minutes: float) -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (now - datetime.timedelta(minutes=minutes)).isoformat(timespec="seconds")


def test_summary_like_table4_and_fig4() -> None:
    rows = [
        {"case_id": "a", "versions": 1, "score": 1, "active_seconds": 120},
        {"case_id": "b", "versions": 1, "score": 3, "active_seconds": 300},
        {"case_id": "c", "versions": 2, "score": 3, "active_seconds": 540},
        {"case_id": "d", "versions": 1, "score": 5, "active_seconds": 60},
        {"case_id": "e", "versions": 0, "score": None, "active_seconds": 0},
    ]
    s = summarise_reviews(rows)
    assert (s["cases"], s["reviewed"], s["scored"]) == (5, 4, 4)
    # scores [1, 3, 3, 5]: 1 -> 1 (25 %), 3 -> 2 (50 %), 5 -> 1 (25 %)
    assert {k: (v["n"], v["percent"]) for k, v in s["score_counts"].items()} == {
        "1": (1, 25.0),
        "2": (0, 0.0),
        "3": (2, 50.0),
        "4": (0, 0.0),
        "5": (1, 25.0),
    }
    assert s["acceptable"] == {"n": 3, "percent": 75.0}  # scores 1-4
    # minutes [2, 5, 9, 1] -> sorted [1, 2, 5, 9]: median (2 + 5) / 2 = 3.5;
    # inclusive quartiles at positions 0.75 and 2.25: 1 + 0.75·1 = 1.75, 5 + 0.25·4 = 6.0
    t = s["correction_time"]
    assert (t["n"], t["median_min"], t["q1_min"], t["q3_min"], t["min_min"], t["max_min"]) == (
        4,
        3.5,
        1.75,
        6.0,
        1.0,
        9.0,
    )
    # the paper's Table 4 (n = 41) and Fig. 4 medians travel with the summary
    assert s["paper"]["table4_n41"] == {"1": 7, "2": 3, "3": 19, "4": 6, "5": 6}
    assert sum(s["paper"]["table4_n41"].values()) == 41
    assert s["paper"]["correction_median_min"] == {"ai_median": 5.0, "semiautomatic_median": 17.0}


def test_empty_summary() -> None:
    s = summarise_reviews([])
    assert (
        s["scored"] == 0 and s["acceptable"]["percent"] is None and s["correction_time"] == {"n": 0}
    )


def test_cohort_status_after_saves(cohort_dir: Path) -> None:
    cohort = Cohort(cohort_dir)
    assert not cohort.single and cohort.case_ids() == ["case01", "case02"]
    case = CaseData.load(cohort.case_dir("case01"), "case01")
    session = CaseSession.open(case)
    session.started_utc = _minutes_ago(10)  # the page has been open for 10 min
    session.remove(2)
    session.save(base_version=0, reviewer="dr a", score=None, comment="", active_seconds=10)
    session.started_utc = _minutes_ago(10)
    session.add(list(SEED_C), "liver")
    session.save(base_version=1, reviewer="dr a", score=4, comment="", active_seconds=50)
    rows = {r["case_id"]: r for r in cohort.status()}
    assert rows["case01"]["status"] == "reviewed" and rows["case01"]["score"] == 4
    assert rows["case01"]["versions"] == 2 and rows["case01"]["latest_version"] == "v002"
    assert rows["case01"]["active_seconds"] == pytest.approx(60.0)  # 10 + 50 s
    assert rows["case02"]["status"] == "not reviewed"
    # a fresh session starts from the latest version: B removed, C added
    again = CaseSession.open(case)
    assert again.base_version == 2 and [row["voxels"] for row in again.lesions()] == [27, 24]


def test_active_seconds_capped_by_wall_time(case_dir: Path) -> None:
    session = CaseSession.open(CaseData.load(case_dir, "case01"))
    session.save(base_version=0, reviewer="dr", score=1, comment="", active_seconds=3600)
    import json

    review = json.loads((case_dir / "review" / "v001" / "report.json").read_text())["review"]
    assert review["active_seconds"] <= 5.0  # the session is seconds old, not an hour


def test_single_case_folder(case_dir: Path) -> None:
    cohort = Cohort(case_dir)
    assert cohort.single and cohort.case_ids() == ["case01"]
    assert cohort.case_dir("case01") == case_dir.resolve()
    with pytest.raises(CaseNotFoundError):
        cohort.case_dir("case02")


def test_folder_without_cases(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no case folder"):
        Cohort(tmp_path)
    with pytest.raises(NotADirectoryError):
        Cohort(tmp_path / "missing")


def test_cli_registered_and_rejects_bad_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from petseg.cli import COMMAND_MODULES
    from petseg.cli.review import register

    assert "petseg.cli.review" in COMMAND_MODULES
    parser = argparse.ArgumentParser(prog="petseg")
    register(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["review", "--help"])
    assert exit_info.value.code == 0
    assert "--no-browser" in capsys.readouterr().out
    args = parser.parse_args(["review", str(tmp_path), "--no-browser", "--port", "0"])
    assert (args.host, args.port, args.no_browser) == ("127.0.0.1", 0, True)
    with pytest.raises(FileNotFoundError, match="no case folder"):
        args.func(args)


def test_cached_table_and_cropped_growing_match_whole_image(tmp_path: Path) -> None:
    """The session measures and grows on crops; the results equal the whole-image calls."""
    import json

    import numpy as np

    from petseg.edit import add_lesion_by_seed
    from petseg.io.nifti import write_nifti
    from petseg.lesions import quantify_lesions
    from petseg.study import Geometry

    shape = (12, 16, 200)
    geometry = Geometry.from_spacing(shape, (3.0, 2.0, 2.0))
    suv = np.ones(shape, dtype=np.float32)
    suv[4:8, 6:10, 10:190] = np.linspace(4.0, 9.0, 180, dtype=np.float32)  # a 36 cm bar
    suv[2:4, 2:4, 2:4] = 7.0
    labels = np.zeros(shape, dtype=np.int32)
    labels[2:4, 2:4, 2:4] = 5
    folder = tmp_path / "bar"
    folder.mkdir()
    write_nifti(folder / "pet_suv.nii.gz", suv, geometry)
    write_nifti(folder / "lesions.nii.gz", labels, geometry)
    report = {
        "reference": {"organ": "liver", "mean": 2.0, "sd": 0.25},
        "parameters": {"connectivity": 26},
    }
    (folder / "report.json").write_text(json.dumps(report))
    session = CaseSession.open(CaseData.load(folder, "bar"))
    # seed at the bar's end: the region runs 180 voxels along x, far beyond the ±32 crop
    session.add([5, 7, 12], "liver")
    whole, whole_label = add_lesion_by_seed(
        labels, suv, geometry, (5, 7, 12), method="liver", reference=report["reference"]
    )
    np.testing.assert_array_equal(session.labels, whole)
    assert whole_label == 6 and int((whole == 6).sum()) == 4 * 4 * 180
    expected = [s.to_dict() for s in quantify_lesions(suv, whole, geometry)]
    got = [{k: v for k, v in row.items() if k != "max_voxel_kji"} for row in session.lesions()]
    assert got == pytest.approx(expected)
    session.remove(5)
    session.undo()
    session.redo()
    expected = [s.to_dict() for s in quantify_lesions(suv, session.labels, geometry)]
    got = [{k: v for k, v in row.items() if k != "max_voxel_kji"} for row in session.lesions()]
    assert [r["label"] for r in got] == [6] and got == pytest.approx(expected)
