"""The review web app: look at a segmentation, remove/add lesions, score, save a version.

:mod:`petseg.review.session` holds the logic (pure Python on arrays and the case
folder); :mod:`petseg.review.server` serves it and the page in ``static/`` (NiiVue,
vendored, no network needed). Start it with ``petseg review CASE_OR_COHORT``.
"""

__all__: list[str] = []
