import pytest

from petseg.progress import enabled, progress, quiet


def test_progress_draws_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(progress(range(3), desc="cases", unit="case", leave=True, delay=0)) == [0, 1, 2]
    assert "cases" in capsys.readouterr().err


def test_quick_steps_draw_no_bar(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(progress(range(3), desc="quick", leave=True)) == [0, 1, 2]
    assert "quick" not in capsys.readouterr().err


def test_quiet_turns_bars_off_only_inside_the_block(capsys: pytest.CaptureFixture[str]) -> None:
    with quiet():
        assert not enabled()
        assert list(progress(range(3), desc="hidden", leave=True, delay=0)) == [0, 1, 2]
    assert enabled()
    assert "hidden" not in capsys.readouterr().err
