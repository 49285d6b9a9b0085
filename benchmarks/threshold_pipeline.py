"""Benchmark: the threshold pipeline on a Carlsen-sized volume against plain scipy.ndimage.

Volume: 336 x 336 x 300 voxels of 2 x 2 x 3 mm (Carlsen et al. 2022's matrix) with a
liver block and ~50 spherical lesions on a noisy body background. Both implementations
run the same steps — reference statistics, liver threshold, connected components
(26-connectivity), removal of components < 0.1 mL, per-lesion table (voxels, volume,
SUVmax, SUVmean, SUVpeak, TLG, centroid) — and must give identical tables.

Run:  python benchmarks/threshold_pipeline.py [--repeats 3]
Prints the time of each, the speed-up ratio and the peak memory (tracemalloc) of each.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from scipy import ndimage

from petseg.lesions import (
    _sphere_kernel,
    label_components,
    min_voxels_for_volume,
    quantify_lesions,
)
from petseg.reference import reference_stats, sphere_mask
from petseg.study import Geometry
from petseg.threshold import reference_threshold, threshold_mask

SHAPE = (300, 336, 336)
SPACING = (3.0, 2.0, 2.0)


def make_volume(seed: int = 0) -> tuple[np.ndarray, Geometry, np.ndarray]:
    rng = np.random.default_rng(seed)
    geometry = Geometry.from_spacing(SHAPE, SPACING)
    suv = np.zeros(SHAPE, np.float32)
    _, y, x = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    body = ((y - 168) / 120.0) ** 2 + ((x - 168) / 150.0) ** 2 <= 1.0
    suv[:, body[0]] = 1.0
    suv[100:170, 110:200, 60:150] = 6.0  # liver
    for _ in range(50):
        c = rng.integers((20, 80, 80), (280, 256, 256))
        r = rng.uniform(3.0, 12.0)  # radius in mm
        dz, dy, dx = np.ogrid[-5:6, -7:8, -7:8]
        ball = (dz * 3.0) ** 2 + (dy * 2.0) ** 2 + (dx * 2.0) ** 2 <= r * r
        box = tuple(slice(ci - h, ci + h + 1) for ci, h in zip(c, (5, 7, 7), strict=True))
        suv[box][ball] = rng.uniform(12.0, 40.0)
    suv *= rng.normal(1.0, 0.1, SHAPE).astype(np.float32)
    np.clip(suv, 0, None, out=suv)
    liver_voi = sphere_mask(geometry, geometry.index_to_patient((135, 130, 80)), 15.0)
    return suv, geometry, liver_voi


def petseg_pipeline(suv, geometry, voi):
    stats = reference_stats(suv, voi, geometry)
    threshold = reference_threshold(stats, "liver")
    min_voxels = min_voxels_for_volume(0.1, geometry.voxel_volume_ml)
    labels = label_components(threshold_mask(suv, threshold), 26, min_voxels=min_voxels)
    return quantify_lesions(suv, labels, geometry)


def scipy_pipeline(suv, geometry, voi):
    values = suv[voi].astype(np.float64)
    threshold = 1.5 * values.mean() + 2 * values.std(ddof=1)
    structure = np.ones((3, 3, 3), bool)
    labels, n = ndimage.label(suv > threshold, structure=structure)
    sizes = ndimage.sum_labels(np.ones_like(labels), labels, np.arange(1, n + 1))
    keep = np.flatnonzero(sizes >= min_voxels_for_volume(0.1, geometry.voxel_volume_ml)) + 1
    labels, n = ndimage.label(np.isin(labels, keep), structure=structure)
    index = np.arange(1, n + 1)
    kernel = _sphere_kernel(geometry.spacing, 1.0).astype(np.float32)
    peak_map = ndimage.convolve(suv, kernel / kernel.sum(), mode="nearest")
    counts = ndimage.sum_labels(np.ones_like(suv), labels, index)
    means = ndimage.mean(suv, labels, index)
    maxima = ndimage.maximum(suv, labels, index)
    peaks = ndimage.maximum(peak_map, labels, index)
    centres = ndimage.center_of_mass(np.ones_like(suv), labels, index)
    return [
        (int(c), float(m), float(mx), float(p), geometry.index_to_patient(ce))
        for c, m, mx, p, ce in zip(counts, means, maxima, peaks, centres, strict=True)
    ]


def timed(fn, *args, repeats: int):
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    fn(*args)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, best, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    suv, geometry, voi = make_volume()
    ours, t_ours, m_ours = timed(petseg_pipeline, suv, geometry, voi, repeats=args.repeats)
    base, t_base, m_base = timed(scipy_pipeline, suv, geometry, voi, repeats=args.repeats)
    # identical tables (order: both label in raster order of first voxel)
    assert len(ours) == len(base), (len(ours), len(base))
    for a, (count, mean, vmax, peak, centre) in zip(ours, base, strict=True):
        assert a.voxels == count and np.isclose(a.suv_mean, mean, rtol=1e-5)
        assert np.isclose(a.suv_max, vmax) and np.isclose(a.suv_peak, peak, rtol=1e-4)
        assert np.allclose((a.centroid_x_mm, a.centroid_y_mm, a.centroid_z_mm), centre)
    print(f"volume {SHAPE} (Z,Y,X) at {SPACING} mm, {len(ours)} lesions after < 0.1 mL removal")
    print(f"petseg pipeline : {t_ours:6.3f} s   peak extra memory {m_ours:7.1f} MiB")
    print(f"scipy baseline  : {t_base:6.3f} s   peak extra memory {m_base:7.1f} MiB")
    print(f"speed-up        : {t_base / t_ours:6.1f} x  (target >= 5 x, petseg < 2 s)")


if __name__ == "__main__":
    main()
