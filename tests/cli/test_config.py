"""Options built from the library's configuration dataclasses (petseg.cli._config): the
option strings, defaults and choices of SegmentParams, ExperimentConfig and
EvaluationParams, and the objects built back from a parsed command line."""

from __future__ import annotations

import argparse

import pytest

from petseg.cli import build_parser
from petseg.cli._common import given_method_options, params_from_args
from petseg.cli._config import (
    add_dataclass_options,
    call_with_args,
    config_from_args,
    given_fields,
    option_strings,
    parse_floats,
)
from petseg.evaluate import EvaluationParams
from petseg.pipeline import SegmentParams
from petseg.review.preview import preview_step
from petseg.slices.experiment import ExperimentConfig


def _parser(config: type, **kwargs: object) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t", exit_on_error=False)
    add_dataclass_options(parser, config, **kwargs)  # type: ignore[arg-type]
    return parser


def test_nothing_given_builds_the_library_defaults() -> None:
    for config in (SegmentParams, ExperimentConfig, EvaluationParams):
        args = _parser(config).parse_args([])
        assert given_fields(args, config) == {}
        if config is not SegmentParams:  # SegmentParams' defaults are the liver method's
            assert config_from_args(args, config) == config()


def test_the_help_shows_the_library_defaults() -> None:
    text = " ".join(_parser(ExperimentConfig, names={"n_folds": "--folds"}).format_help().split())
    assert "--folds FOLDS patient-level test folds (default 6)" in text
    assert "--learning-rate LEARNING_RATE Adam learning rate (default 0.001)" in text
    assert "(default 0.1,0.1,0.2,0.1,0.1)" in text  # the dropout tuple, comma-separated
    assert "--precision {auto,bf16,fp32}" in text and "(default auto)" in text
    assert "--no-threshold3d turn off: also run the 3D threshold CNN" in text


def test_given_options_build_the_config() -> None:
    parser = _parser(ExperimentConfig, names={"n_folds": "--folds", "threshold3d": "--no-3d"})
    args = parser.parse_args(
        ["--folds", "3", "--precision", "fp32", "--no-3d", "--dropout", "0,0.5,0,0.5,0"]
    )
    config = config_from_args(args, ExperimentConfig)
    assert config == ExperimentConfig(
        n_folds=3, precision="fp32", threshold3d=False, dropout=(0.0, 0.5, 0.0, 0.5, 0.0)
    )
    assert config.unet_epochs == 30 and config.seed == 0  # left out: the library's


def test_choices_come_from_literal_annotations_and_field_metadata() -> None:
    parser = _parser(EvaluationParams, names={"iou_threshold": "--iou"})
    with pytest.raises(argparse.ArgumentError, match="invalid choice"):
        parser.parse_args(["--criterion", "dice"])  # Literal["overlap", "iou"]
    with pytest.raises(argparse.ArgumentError, match="invalid choice"):
        parser.parse_args(["--connectivity", "8"])  # metadata choices: 6, 18, 26
    args = parser.parse_args(["--iou", "0.25", "--criterion", "iou", "--empty", "zero"])
    assert config_from_args(args, EvaluationParams) == EvaluationParams(
        criterion="iou", iou_threshold=0.25, empty="zero"
    )


def test_option_strings_follow_the_field_and_its_default() -> None:
    assert option_strings("min_volume_ml", 0.1) == ("--min-volume-ml",)
    assert option_strings("body", True) == ("--no-body",)  # a default-True switch turns off
    assert option_strings("threshold3d", False) == ("--threshold3d",)
    assert option_strings("n_folds", 6, {"n_folds": ("--folds", "-k")}) == ("--folds", "-k")


def test_numbers_are_comma_separated_with_the_count_checked() -> None:
    assert parse_floats("1, 2,3.5", 3, "--spacing") == (1.0, 2.0, 3.5)
    assert parse_floats("0.1", None, "--dropout") == (0.1,)
    with pytest.raises(argparse.ArgumentTypeError, match="--ref-sphere needs 4"):
        parse_floats("1,2,3", 4, "--ref-sphere")
    with pytest.raises(argparse.ArgumentTypeError, match="one or more"):
        parse_floats("", None, "--dropout")


def test_segment_options_are_segment_params_fields() -> None:
    method = ["--method", "percent_max", "--percent-max", "0.3"]
    rest = ["--no-body-mask", "--min-volume-ml", "0.5", "--connectivity", "6"]
    args = build_parser().parse_args(["segment", "x", "--out", "o", *method, *rest])
    assert params_from_args(args) == SegmentParams(
        method="percent_max", percent_max=0.3, body=False, min_volume_ml=0.5, connectivity=6
    )
    assert given_method_options(args) == [
        "--percent-max",
        "--connectivity",
        "--min-volume-ml",
        "--no-body-mask",
    ]


def test_threshold_alone_is_the_fixed_method_and_reference_the_method() -> None:
    args = build_parser().parse_args(["segment", "x", "--out", "o", "--threshold", "4"])
    assert params_from_args(args) == SegmentParams(method="fixed", threshold=4.0)
    args = build_parser().parse_args(["segment", "x", "--out", "o", "--reference", "spleen"])
    assert params_from_args(args) == SegmentParams(method="spleen")


def test_run_takes_predict_and_not_a_second_spelling_of_fixed() -> None:
    parser = build_parser()
    assert parser.parse_args(["run", "c", "--out", "o", "--method", "predict"]).method == "predict"
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "c", "--out", "o", "--method", "threshold"])


def test_a_library_function_gets_its_parameters_from_the_options_of_the_same_name() -> None:
    args = argparse.Namespace(text="1,2", count=2, what="--x", func=None)
    assert call_with_args(parse_floats, args) == (1.0, 2.0)
    assert call_with_args(parse_floats, args, text="5,6,7", count=3) == (5.0, 6.0, 7.0)
    with pytest.raises(TypeError, match=r"parse_floats\(\) takes no parameter\(s\) \['force'\]"):
        call_with_args(parse_floats, args, force=True)
    # an option left out (None) leaves the function's default in place: max_voxels
    # PREVIEW_VOXELS brings 300 × 336 × 336 voxels down by a factor 3 (its docstring)
    left_out = argparse.Namespace(shape=(300, 336, 336), max_voxels=None)
    assert call_with_args(preview_step, left_out) == 3
