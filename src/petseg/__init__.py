"""petseg: total tumour segmentation and quantification in PET/CT.

The public surface is re-exported here; heavy modules (torch) are imported only by the
functions that need them.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("petseg")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

from petseg.lesions import (
    LesionStats,
    PatientStats,
    label_components,
    patient_stats,
    quantify_lesions,
    remove_labels,
    remove_small_components,
)
from petseg.study import Geometry, Study

__all__ = [
    "Geometry",
    "LesionStats",
    "PatientStats",
    "Study",
    "__version__",
    "label_components",
    "patient_stats",
    "quantify_lesions",
    "remove_labels",
    "remove_small_components",
]
