import pytest

from petseg.checks import check_choice, did_you_mean


def test_check_choice_returns_a_valid_value() -> None:
    assert check_choice("method", "liver", ("liver", "spleen")) == "liver"


def test_check_choice_names_the_option_and_the_closest_choice() -> None:
    with pytest.raises(
        ValueError,
        match=r"method must be one of \('liver', 'spleen'\), got 'livr' \(did you mean 'liver'\?\)",
    ):
        check_choice("method", "livr", ("liver", "spleen"))


def test_did_you_mean_is_empty_when_nothing_is_close() -> None:
    assert did_you_mean("xyz", ("liver", "spleen")) == ""
