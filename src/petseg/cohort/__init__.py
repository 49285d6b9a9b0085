"""Cohorts: many studies in one resumable, parallel run (Dask), and the cohort table.

See ``docs/cohort.md``. The entry point is :func:`run_cohort`.
"""

from petseg.cohort.discover import StudyInput, discover_studies, read_manifest_csv
from petseg.cohort.run import CohortRun, PredictPipeline, SegmentPipeline, run_cohort

__all__ = [
    "CohortRun",
    "PredictPipeline",
    "SegmentPipeline",
    "StudyInput",
    "discover_studies",
    "read_manifest_csv",
    "run_cohort",
]
