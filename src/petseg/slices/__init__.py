"""The 2D slice methods of Rainio et al. 2023 and their cross-validation experiment.

Modules: :mod:`~petseg.slices.build` (tumour slices: select, crop, downscale, scale),
:mod:`~petseg.slices.threshold_search` (optimal thresholds on the 0.00-0.99 grid),
:mod:`~petseg.slices.models` (Tables 2 and 3), :mod:`~petseg.slices.training`,
:mod:`~petseg.slices.experiment` (folds, three methods, Tables 4-5, Fig. 3),
:mod:`~petseg.slices.threshold3d` (the 3D threshold CNN), :mod:`~petseg.slices.predict`,
:mod:`~petseg.slices.dataset` and :mod:`~petseg.slices.store` (files).

torch is imported only by the modules that need it, not by this package.
"""

from petseg.slices.build import SliceSet, build_slice_set
from petseg.slices.threshold_search import best_constant_threshold, optimal_thresholds

__all__ = ["SliceSet", "best_constant_threshold", "build_slice_set", "optimal_thresholds"]
