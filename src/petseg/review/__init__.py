"""The review web app: look at a segmentation, remove/add lesions, score, save a version.

The logic is pure Python on arrays and the case folder: :mod:`~petseg.review.cases`
(the cohort and a case's images), :mod:`~petseg.review.edits` (edits as voxel
differences), :mod:`~petseg.review.lesion_index` (the lesion table kept up to date),
:mod:`~petseg.review.session` (one tab's edits, undo, saving),
:mod:`~petseg.review.versions` (saved versions and a case's status) and
:mod:`~petseg.review.scoring` (Carlsen Table 1 and the cohort summary).
:mod:`~petseg.review.app` holds the server's state and operations,
:mod:`~petseg.review.routes` and :mod:`~petseg.review.security` the HTTP layer, and
:mod:`~petseg.review.server` serves it with the page in ``static/`` (NiiVue, vendored,
no network needed). Start it with ``petseg review CASE_OR_COHORT``.
"""

__all__: list[str] = []
