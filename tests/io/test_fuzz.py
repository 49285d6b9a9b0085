"""Seeded mutation fuzz of a real PET series: damaged files are refused by name, never misread.

Each mutant changes one file of the sarcoma study STS_019 (47 slices): either one byte
of its header region (everything before Pixel Data, preamble and file meta included)
is inverted (XOR 0xFF), or the file is cut at a random length. Inverting all bits turns
every text character into a non-text byte, so a damaged number cannot pass as another
valid number: a slice's Rescale Slope may legitimately differ from its neighbours', and
no reader could tell ``3`` from ``2`` there.

Every mutant must give either the unmutated study (same PET array, grid and SUV factor)
or a ``ValueError``/``OSError`` whose message names the mutated file.
"""

from __future__ import annotations

import random
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from petseg.io import load_study
from petseg.study import Study

PATIENT = "STS_019"
PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010) little endian
SEED = 20261206

# pydicom warns about the values the mutations damage; the outcome is what counts.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@dataclass(frozen=True)
class Mutant:
    """One damaged file: ``kind`` is "flip" (byte ``offset`` inverted) or "cut" (length)."""

    kind: str
    file: Path
    offset: int

    def apply(self, data: bytes) -> bytes:
        if self.kind == "cut":
            return data[: self.offset]
        mutated = bytearray(data)
        mutated[self.offset] ^= 0xFF
        return bytes(mutated)


def mutants(files: list[Path], originals: dict[Path, bytes], seed: int, count: int) -> list[Mutant]:
    """``count`` mutants drawn with ``seed``: 60 % header byte flips, 40 % truncations."""
    rng = random.Random(seed)
    drawn = []
    for _ in range(count):
        path = rng.choice(files)
        data = originals[path]
        if rng.random() < 0.6:
            drawn.append(Mutant("flip", path, rng.randrange(data.index(PIXEL_DATA_TAG) + 8)))
        else:
            drawn.append(Mutant("cut", path, rng.randrange(len(data))))
    return drawn


def _same_study(study: Study, base: Study) -> bool:
    return (
        study.pet.shape == base.pet.shape
        and np.array_equal(study.pet, base.pet)
        and np.array_equal(study.geometry.affine, base.geometry.affine)
        and study.provenance["suv"]["factor"] == base.provenance["suv"]["factor"]
    )


def outcome(folder: Path, mutant: Mutant, original: bytes, base: Study) -> str:
    """``"identical"`` or ``"refused"``; anything else fails the test, naming the mutant."""
    mutant.file.write_bytes(mutant.apply(original))
    try:
        study = load_study(folder)
    except (ValueError, OSError) as err:
        assert str(mutant.file) in str(err), f"{mutant}: the error does not name the file: {err}"
        return "refused"
    finally:
        mutant.file.write_bytes(original)
    assert _same_study(study, base), f"{mutant}: read without error but the study differs"
    return "identical"


@pytest.fixture(scope="module")
def series(
    tmp_path_factory: pytest.TempPathFactory, sts_study
) -> tuple[Path, dict[Path, bytes], Study]:
    folder = tmp_path_factory.mktemp("fuzz") / "pet"
    shutil.copytree(sts_study(PATIENT) / "pet", folder)
    originals = {path: path.read_bytes() for path in sorted(folder.iterdir())}
    return folder, originals, load_study(folder)


def _run(series: tuple[Path, dict[Path, bytes], Study], seed: int, count: int) -> Counter:
    folder, originals, base = series
    counts: Counter = Counter()
    for mutant in mutants(sorted(originals), originals, seed, count):
        counts[mutant.kind, outcome(folder, mutant, originals[mutant.file], base)] += 1
    return counts


def test_mutants_are_drawn_from_the_seed(series) -> None:
    _, originals, _ = series
    files = sorted(originals)
    assert mutants(files, originals, 7, 20) == mutants(files, originals, 7, 20)
    assert mutants(files, originals, 7, 20) != mutants(files, originals, 8, 20)
    cut = Mutant("cut", files[0], 100)
    assert cut.apply(originals[files[0]]) == originals[files[0]][:100]
    flipped = Mutant("flip", files[0], 200).apply(originals[files[0]])
    assert (
        flipped[200] == originals[files[0]][200] ^ 0xFF
        and flipped[201:] == originals[files[0]][201:]
    )


def test_damaged_pet_files_give_the_same_study_or_an_error_naming_the_file(series) -> None:
    counts = _run(series, SEED, 40)
    assert sum(counts.values()) == 40
    # Both outcomes occur: the fuzz reaches values that matter and values that do not.
    assert counts["flip", "identical"] > 0 and counts["flip", "refused"] > 0
    assert counts["cut", "refused"] > 0


@pytest.mark.slow
def test_thousands_of_damaged_pet_files(series) -> None:
    counts = _run(series, SEED + 1, 3000)
    print(dict(counts))
    assert sum(counts.values()) == 3000
