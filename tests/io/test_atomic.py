"""petseg.io.atomic: atomic writes, the output marker, and what --force may replace."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from petseg.io.atomic import (
    MARKER,
    ForeignOutputError,
    InputOverlapError,
    OutputExistsError,
    atomic_dir,
    atomic_file,
    check_inputs,
    claim_dir,
    is_petseg_output,
    write_json_atomic,
)


def test_folder_is_marked_with_its_entries_and_inputs(tmp_path: Path) -> None:
    source = tmp_path / "in.nii.gz"
    source.write_bytes(b"pet")
    with atomic_dir(tmp_path / "out", inputs=[source]) as tmp:
        (tmp / "a.txt").write_text("a")
        (tmp / "sub").mkdir()
    marker = json.loads((tmp_path / "out" / MARKER).read_text())
    assert marker["written_by"] == "petseg" and marker["entries"] == ["a.txt", "sub"]
    assert marker["inputs"] == [str(source.resolve())]
    assert is_petseg_output(tmp_path / "out") and is_petseg_output(tmp_path / "out" / "a.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.nii.gz", "out"]


def test_a_single_file_gets_a_marker_beside_it_unless_inside_a_marked_folder(
    tmp_path: Path,
) -> None:
    write_json_atomic(tmp_path / "x.json", {"a": 1})
    assert (tmp_path / f".x.json{MARKER}").is_file() and is_petseg_output(tmp_path / "x.json")
    with atomic_dir(tmp_path / "case") as tmp:
        write_json_atomic(tmp / "y.json", {"b": 2})
    assert not (tmp_path / "case" / f".y.json{MARKER}").exists()
    assert is_petseg_output(tmp_path / "case" / "y.json")


def test_force_replaces_a_marked_folder_and_carries_kept_entries_over(tmp_path: Path) -> None:
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "result.txt").write_text("old")
    (tmp_path / "out" / "review").mkdir()  # written later, by another petseg step
    (tmp_path / "out" / "review" / "v001.txt").write_text("physician")
    with pytest.raises(OutputExistsError, match="--force"):
        with atomic_dir(tmp_path / "out"):
            pass
    with pytest.raises(ForeignOutputError, match="review"):  # not kept: it would be lost
        with atomic_dir(tmp_path / "out", force=True):
            pass
    with atomic_dir(tmp_path / "out", force=True, keep=("review",)) as tmp:
        (tmp / "result.txt").write_text("new")
    assert (tmp_path / "out" / "result.txt").read_text() == "new"
    assert (tmp_path / "out" / "review" / "v001.txt").read_text() == "physician"
    assert sorted(json.loads((tmp_path / "out" / MARKER).read_text())["entries"]) == [
        "result.txt",
        "review",
    ]


def test_a_failed_replacement_leaves_the_old_folder_whole(tmp_path: Path) -> None:
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "result.txt").write_text("old")
        (tmp / "review").mkdir()
        (tmp / "review" / "v001.txt").write_text("physician")
    with pytest.raises(ValueError, match="carried over"):  # the block wrote a kept name
        with atomic_dir(tmp_path / "out", force=True, keep=("review",)) as tmp:
            (tmp / "review").mkdir()
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_dir(tmp_path / "out", force=True, keep=("review",)):
            raise RuntimeError("boom")
    assert (tmp_path / "out" / "result.txt").read_text() == "old"
    assert (tmp_path / "out" / "review" / "v001.txt").read_text() == "physician"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_force_never_replaces_what_petseg_did_not_write(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "data.txt").write_text("x")
    with pytest.raises(ForeignOutputError, match=f"no {MARKER}"):
        with atomic_dir(theirs, force=True):
            pass
    (tmp_path / "file.txt").write_text("y")
    with pytest.raises(ForeignOutputError, match="not written by petseg"):
        with atomic_file(tmp_path / "file.txt", force=True):
            pass
    link = tmp_path / "link"
    os.symlink(theirs, link)
    with pytest.raises(ForeignOutputError):
        with atomic_dir(link, force=True):
            pass
    forged = tmp_path / "forged"
    forged.mkdir()
    (forged / MARKER).write_text("{}")  # not a petseg marker
    (forged / "x").write_text("x")
    assert not is_petseg_output(forged)
    assert (theirs / "data.txt").read_text() == "x" and (tmp_path / "file.txt").read_text() == "y"
    empty = tmp_path / "empty"
    empty.mkdir()
    with atomic_dir(empty, force=True) as tmp:  # nothing to lose
        (tmp / "a").write_text("a")
    assert (empty / "a").is_file()


@pytest.mark.parametrize("relation", ["equal", "parent", "grandparent", "symlink", "hardlink"])
def test_an_output_that_is_or_holds_an_input_is_refused(tmp_path: Path, relation: str) -> None:
    source = tmp_path / "study" / "pet" / "pet.nii.gz"
    source.parent.mkdir(parents=True)
    source.write_bytes(b"pet")
    output = {
        "equal": source,
        "parent": source.parent,
        "grandparent": tmp_path,
        "symlink": tmp_path / "alias",
        "hardlink": tmp_path / "hard.nii.gz",
    }[relation]
    if relation == "symlink":
        os.symlink(tmp_path / "study", output)
    if relation == "hardlink":
        os.link(source, output)
    with pytest.raises(InputOverlapError, match="the input"):
        check_inputs(output, [source])
    for force in (False, True):
        with pytest.raises(InputOverlapError):
            with atomic_file(output, force=force, inputs=[source]):
                pass
    assert source.read_bytes() == b"pet"
    check_inputs(source.parent / "seg", [source])  # beside or inside an input folder is fine
    check_inputs(tmp_path / "study" / "out", [source.parent])


def test_claim_dir_takes_up_only_empty_or_own_folders(tmp_path: Path) -> None:
    run = claim_dir(tmp_path / "run", kind="cohort run")
    (run / "cohort.csv").write_text("id\n")
    assert claim_dir(run, kind="cohort run") == run  # resumed
    assert is_petseg_output(run / "cohort.csv")
    with pytest.raises(ForeignOutputError, match="cohort run folder, not a model folder"):
        claim_dir(run, kind="model")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "x").write_text("x")
    with pytest.raises(ForeignOutputError, match="not written by petseg"):
        claim_dir(theirs, kind="model")
    (theirs / "plan.json").write_text("{}")  # a model folder of an earlier petseg
    assert claim_dir(theirs, kind="model", recognise=("plan.json",)) == theirs
    with pytest.raises(InputOverlapError):
        claim_dir(tmp_path, kind="model", inputs=[theirs / "x"])
