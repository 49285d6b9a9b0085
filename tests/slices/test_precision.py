"""The slice experiment's precision: native bf16 detected from the CPU flags, auto resolved."""

import pytest

from petseg.slices.experiment import ExperimentConfig
from petseg.slices.precision import cpu_native_bf16, resolve_precision

EPYC = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni\n"
SAPPHIRE_RAPIDS = "processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile\n"
GRAVITON3 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


@pytest.mark.parametrize(
    ("cpuinfo", "native"), [(EPYC, False), (SAPPHIRE_RAPIDS, True), (GRAVITON3, True), ("", False)]
)
def test_cpu_native_bf16_reads_the_flags(cpuinfo, native):
    assert cpu_native_bf16(cpuinfo) is native


def test_a_flag_that_only_contains_bf16_does_not_count():
    assert not cpu_native_bf16("flags\t: avx512_bf16x\n")


def test_auto_is_bf16_only_where_native():
    assert resolve_precision("auto", native_bf16=True)[0] == "bf16"
    precision, reason = resolve_precision("auto", native_bf16=False)
    assert precision == "fp32" and "no native bf16" in reason
    assert resolve_precision("bf16", native_bf16=False) == ("bf16", "bf16 as requested")


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="'auto' or one of"):
        resolve_precision("fp16")


def test_experiment_config_resolves_auto_and_records_why():
    config = ExperimentConfig()
    expected = "bf16" if cpu_native_bf16() else "fp32"
    assert config.precision == expected
    settings = config.to_dict()
    assert settings["precision"] == expected
    assert settings["precision_reason"].startswith("auto: ")
    assert config.train_config(1, 0).precision == expected
    assert ExperimentConfig(precision="fp32").to_dict()["precision_reason"] == "fp32 as requested"
