"""Reports: tables and figures rendered from results that are already computed.

The computing modules (:mod:`petseg.evaluate`, :mod:`petseg.slices.experiment`) produce
JSON-ready results; this package turns them into what a reader sees, and the workflow
that owns the output folder writes the files.

:mod:`~petseg.reporting.text`
    :class:`~petseg.reporting.text.Table`, number formatting, Markdown and HTML pages, CSV.
:mod:`~petseg.reporting.evaluation`
    The cohort evaluation's tables (``summary.md``, ``summary.html``).
:mod:`~petseg.reporting.slices`
    The slice experiment's Tables 4 and 5 (``tables.md``).
:mod:`~petseg.reporting.figures`
    Figures: per-case Dice distributions, predicted vs optimal thresholds (Rainio
    Fig. 3), example slices (Rainio Fig. 4).
"""

from petseg.reporting.evaluation import evaluation_html, evaluation_markdown, evaluation_tables
from petseg.reporting.figures import (
    agg_figure,
    dice_distribution_figure,
    slice_examples_figure,
    threshold_fit_figure,
)
from petseg.reporting.slices import experiment_markdown, experiment_tables
from petseg.reporting.text import Cell, Table, csv_text, html_page, markdown_page

__all__ = [
    "Cell",
    "Table",
    "agg_figure",
    "csv_text",
    "dice_distribution_figure",
    "evaluation_html",
    "evaluation_markdown",
    "evaluation_tables",
    "experiment_markdown",
    "experiment_tables",
    "html_page",
    "markdown_page",
    "slice_examples_figure",
    "threshold_fit_figure",
]
