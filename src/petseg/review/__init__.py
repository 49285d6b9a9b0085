"""The review web app: look at a segmentation, remove/add lesions, score, save a version.

The logic is pure Python on arrays and the case folder: :mod:`~petseg.review.cases`
(the cohort and a case's images), :mod:`~petseg.review.edits` (edits as voxel
differences), :mod:`~petseg.review.lesion_index` (the lesion table kept up to date),
:mod:`~petseg.review.session` (one tab's edits, undo, saving),
:mod:`~petseg.review.versions` (saved versions and a case's status),
:mod:`~petseg.review.scoring` (Carlsen Table 1 and the cohort summary),
:mod:`~petseg.review.export` (DICOM export of a saved version) and
:mod:`~petseg.review.errors`. :mod:`~petseg.review.app` holds the server's state and
operations, with :mod:`~petseg.review.images` and :mod:`~petseg.review.preview` (what
the page is sent); :mod:`~petseg.review.routes`, :mod:`~petseg.review.http_io` and
:mod:`~petseg.review.security` are the HTTP layer, and :mod:`~petseg.review.server`
serves it with the page in ``static/`` (NiiVue, vendored, no network needed). Start it
with ``petseg review CASE_OR_COHORT``.
"""

__all__: list[str] = []
