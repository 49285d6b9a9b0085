"""End-to-end test in a real headless Chromium (Debian's chromium + chromedriver, Selenium).

Loads the phantom case of ``conftest.py`` in the review page, removes the false positive
(lesion B) by clicking on it in the image, adds the missed lesion C by clicking a seed in
it with the liver-reference method, scores and saves, then checks the saved version on
disk. Hosts other than 127.0.0.1 are made unresolvable, so the page provably needs no
network. Screenshots are kept under the test's tmp folder.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from petseg.io.nifti import read_nifti

from .conftest import LESION_A, LESION_C, SEED_C, add_removed_uptake, make_case

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (test extra)"
)
if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip(
        "chromium and chromedriver are not installed (apt install chromium chromium-driver)",
        allow_module_level=True,
    )


def chrome(tmp_path: Path):  # type: ignore[no-untyped-def]
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-angle=swiftshader",
        "--enable-unsafe-swiftshader",
        "--window-size=1500,900",
        "--force-device-scale-factor=1",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    # An explicit driver path: Selenium Manager never downloads anything.
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


@pytest.fixture
def served(tmp_path: Path):  # type: ignore[no-untyped-def]
    from petseg.review.server import make_server

    root = tmp_path / "cohort"
    make_case(root / "case01")
    # a preview limit below the case's 20 480 voxels: the page first shows the case
    # reduced 2x per axis, then swaps in full resolution (petseg.review.preview)
    server, url = make_server(root, port=0, preview_voxels=20 * 32 * 32 // 8)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root / "case01", url
    server.shutdown()
    server.server_close()


def wait_for(driver, script: str, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.1)
    logs = driver.execute_script("return document.getElementById('status').textContent")
    raise AssertionError(f"timed out waiting for {script!r}; page status: {logs!r}")


def click_voxel(driver, i: int, j: int, k: int) -> None:  # type: ignore[no-untyped-def]
    """Click the canvas where NiiVue draws voxel (i, j, k) (NIfTI order) in the axial view."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    # NiiVue maps canvas pixels to volume fractions (canvasPos2frac); search the tile for
    # the pixels that show voxel (i, j) of the current slice and click their centre.
    x, y = driver.execute_script(
        """
        const nv = window.petsegReviewNv; const [i, j, k] = arguments[0];
        nv.drawScene();
        const c = document.getElementById('gl');
        let sx = 0, sy = 0, n = 0;
        for (let y = 0; y < c.height; y += 2) for (let x = 0; x < c.width; x += 2) {
          const f = nv.canvasPos2frac([x, y]);
          if (f[0] < 0) continue;
          const v = nv.frac2vox(f);
          if (v[0] === i && v[1] === j && v[2] === k) { sx += x; sy += y; n++; }
        }
        if (!n) return null;
        const s = c.clientWidth / c.width;
        return [(sx / n) * s - c.clientWidth / 2, (sy / n) * s - c.clientHeight / 2];
        """,
        [i, j, k],
    )
    canvas = driver.find_element(By.ID, "gl")
    ActionChains(driver).move_to_element_with_offset(canvas, round(x), round(y)).click().perform()


def test_remove_add_save_in_browser(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    case_dir, url = served
    shots = tmp_path / "screenshots"
    shots.mkdir()
    driver = chrome(tmp_path)
    try:
        driver.get(url)
        wait_for(driver, "return document.body.dataset.loaded === 'case01'")
        timings = driver.execute_script("return window.petsegReview.timings")
        shown = driver.execute_script(
            "return window.petsegReviewNv.volumes.map(v => Array.from(v.hdr.dims.slice(1, 4)))"
        )
        step = driver.execute_script("return window.petsegReview.step")
        driver.save_screenshot(str(shots / "1-loaded.png"))
        rows = driver.find_elements(By.CSS_SELECTOR, "#lesion-table tbody tr")
        assert [r.get_attribute("data-label") for r in rows] == ["1", "2"]

        driver.find_element(By.CSS_SELECTOR, "#views button[data-view=axial]").click()
        # pick lesion 2 in the list: the page jumps to its hottest voxel
        rows[1].click()
        wait_for(
            driver,
            "return document.querySelector('#lesion-table tr.current')?.dataset.label === '2'",
        )
        k = driver.execute_script("return window.petsegReview.lastVox[2]")
        assert k in (12, 13, 14)  # the axial slices that cross both B and C

        # remove the false positive B by clicking on it (voxel i=21, j=21)
        driver.find_element(By.CSS_SELECTOR, "input[name=mode][value=remove]").click()
        click_voxel(driver, 21, 21, k)
        wait_for(driver, "return document.body.dataset.revision === '1'")
        labels = driver.execute_script("return window.petsegReview.lesions.map(l => l.label)")
        assert labels == [1]

        # add the missed lesion C by a seed click (voxel i=22, j=9) with the liver method
        driver.find_element(By.CSS_SELECTOR, "input[name=mode][value=add]").click()
        driver.execute_script("document.getElementById('method').value = 'liver'")
        click_voxel(driver, SEED_C[2], SEED_C[1], k)
        wait_for(driver, "return document.body.dataset.revision === '2'")
        lesions = driver.execute_script("return window.petsegReview.lesions")
        # the overlay in the browser was patched in place: its voxel counts match the server's
        counts = driver.execute_script(
            "const img = window.petsegReviewNv.volumes.at(-1).img; const c = {};"
            "for (const v of img) if (v) c[v] = (c[v] || 0) + 1; return c;"
        )
        driver.find_element(By.CSS_SELECTOR, "#views button[data-view=multiplanar]").click()
        driver.save_screenshot(str(shots / "2-edited.png"))

        driver.find_element(By.CSS_SELECTOR, "input[name=score][value='3']").click()
        driver.find_element(By.ID, "comment").send_keys("bladder removed, one node added")
        driver.find_element(By.ID, "reviewer").send_keys("Dr Test")
        driver.find_element(By.ID, "save").click()
        wait_for(driver, "return document.body.dataset.saved === 'v001'")
        driver.save_screenshot(str(shots / "3-saved.png"))
    finally:
        driver.quit()

    # lesion C grown with the liver threshold 3.5 SUV: exactly its 24 voxels (conftest),
    # under label 2 = max label after removing B + 1 (petseg.edit.add_lesion_by_seed)
    assert [(les["label"], les["voxels"]) for les in lesions] == [(1, 27), (2, 24)]
    assert counts == {"1": 27, "2": 24}
    # the preview came first, then the full-resolution CT, PET and labels replaced it
    assert 0 < timings["first_paint_ms"] <= timings["full_resolution_ms"]
    assert step == 1 and shown == [[32, 32, 20]] * 3

    saved, _ = read_nifti(case_dir / "review" / "v001" / "lesions.nii.gz")
    expected = np.zeros_like(saved)
    expected[LESION_A] = 1
    expected[LESION_C] = 2
    np.testing.assert_array_equal(saved, expected)
    original, _ = read_nifti(case_dir / "lesions.nii.gz")
    assert int(original.max()) == 2 and int((original == 2).sum()) == 27  # untouched

    report = json.loads((case_dir / "review" / "v001" / "report.json").read_text())
    review = report["review"]
    assert review["reviewer"] == "Dr Test"
    assert review["score"] == 3 and review["score_text"] == "Acceptable with minor adjustments"
    assert review["comment"] == "bladder removed, one node added"
    assert review["parent_version"] == "original"
    assert [(e["op"], e.get("label"), e.get("new_label")) for e in review["edits"]] == [
        ("remove", 2, None),
        ("add", None, 2),
    ]
    assert (
        review["edits"][1]["seed_kji"] == [k, SEED_C[1], SEED_C[2]]
        and review["edits"][1]["method"] == "liver"
    )
    assert report["patient"]["lesion_count"] == 2
    # TTV = (27 + 24) voxels x 0.012 mL
    assert report["patient"]["total_tumour_volume_ml"] == pytest.approx(51 * 0.012)
    assert review["active_seconds"] >= 0


def test_removed_uptake_layer_and_restore_in_browser(tmp_path: Path) -> None:
    """Lesion C was removed as kidney uptake: the page shows it as a layer and in the list,
    and its restore button gives it back as lesion 3."""
    from selenium.webdriver.common.by import By

    from petseg.review.server import make_server

    root = tmp_path / "cohort"
    add_removed_uptake(make_case(root / "case01"))
    server, url = make_server(root, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = chrome(tmp_path)
    try:
        driver.get(url)
        wait_for(driver, "return document.body.dataset.loaded === 'case01'")
        names = driver.execute_script("return window.petsegReviewNv.volumes.map(v => v.name)")
        layer = driver.execute_script(
            "const img = window.petsegReviewNv.volumes.find(v => v.name === 'removed.nii.gz').img;"
            "let n = 0; for (const v of img) if (v === 1) n++; return n;"
        )
        rows = driver.find_elements(By.CSS_SELECTOR, "#removed-table tbody tr")
        assert [r.text.split()[:2] for r in rows] == [["1", "kidneys"]]
        rows[0].find_element(By.CSS_SELECTOR, "button.restore").click()
        wait_for(driver, "return document.body.dataset.revision === '1'")
        lesions = driver.execute_script("return window.petsegReview.lesions")
        counts = driver.execute_script(
            "const img = window.petsegReviewNv.volumes.at(-1).img; const c = {};"
            "for (const v of img) if (v) c[v] = (c[v] || 0) + 1; return c;"
        )
        restored = driver.find_element(By.CSS_SELECTOR, "#removed-table tbody tr").text
    finally:
        driver.quit()
        server.shutdown()
        server.server_close()
    assert names == ["ct.nii.gz", "pet.nii.gz", "removed.nii.gz", "labels.nii.gz"]
    assert layer == 24
    assert [(les["label"], les["voxels"]) for les in lesions] == [(1, 27), (2, 27), (3, 24)]
    assert counts == {"1": 27, "2": 27, "3": 24}
    assert "restored" in restored


def test_export_buttons_on_a_real_dicom_case(sts_study, tmp_path: Path) -> None:
    """A real FDG-PET study (STS_019, DICOM) segmented at SUV 2.5: remove the smallest
    lesion in the list, save, then the two export buttons write an RTSTRUCT and a SEG of
    the saved version that reference the PET series."""
    import pydicom
    from selenium.webdriver.common.by import By

    from petseg.io import load_study
    from petseg.io.rtstruct import read_rtstruct
    from petseg.pipeline import SegmentParams
    from petseg.review.server import make_server
    from petseg.workflows import segment_to_folder

    dicom = sts_study("STS_019")
    study = load_study(dicom)
    case_dir = tmp_path / "cohort" / "sts019"
    result = segment_to_folder(study, SegmentParams(method="fixed", threshold=2.5), case_dir)
    # the three components above SUV 2.5 in this study (measured with petseg segment)
    assert [les.voxels for les in result.lesions] == [655, 8, 2]
    server, url = make_server(tmp_path / "cohort", port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = chrome(tmp_path)
    try:
        driver.get(url)
        wait_for(driver, "return document.body.dataset.loaded === 'sts019'")
        driver.find_element(By.CSS_SELECTOR, "#lesion-table tr[data-label='3'] button.rm").click()
        wait_for(driver, "return document.body.dataset.revision === '1'")
        driver.find_element(By.CSS_SELECTOR, "input[name=score][value='4']").click()
        driver.find_element(By.ID, "reviewer").send_keys("Dr Export")
        driver.find_element(By.ID, "save").click()
        wait_for(driver, "return document.body.dataset.saved === 'v001'")
        for button in ("export-rtstruct", "export-seg"):
            driver.find_element(By.ID, button).click()
            wait_for(
                driver,
                f"return document.getElementById('status').textContent.includes('{button[7:]}.dcm')",
            )
        driver.save_screenshot(str(tmp_path / "exported.png"))
    finally:
        driver.quit()
        server.shutdown()
        server.server_close()

    saved, _ = read_nifti(case_dir / "review" / "v001" / "lesions.nii.gz")
    assert sorted(np.unique(saved).tolist()) == [0, 1, 2]
    pet_series = pydicom.dcmread(next((dicom / "pet").iterdir())).SeriesInstanceUID
    rtstruct = case_dir / "review" / "v001" / "export-rtstruct" / "rtstruct.dcm"
    rois = read_rtstruct(rtstruct, study.geometry, series_uid=pet_series)
    # the contours rasterise back to exactly the saved voxels (petseg.io.rtstruct)
    assert list(rois) == ["lesion_001", "lesion_002"]
    np.testing.assert_array_equal(rois["lesion_001"], saved == 1)
    np.testing.assert_array_equal(rois["lesion_002"], saved == 2)
    seg = pydicom.dcmread(case_dir / "review" / "v001" / "export-seg" / "seg.dcm")
    assert seg.Modality == "SEG" and len(seg.SegmentSequence) == 2
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == pet_series
