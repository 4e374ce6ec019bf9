"""Build flags for llama.cpp from the CPU's features, and reading what a build was made for."""

from __future__ import annotations

from datawheel.models.cpu import build_key, cmake_args, ggml_options, main, missing_for

AVX2_LAPTOP = {"sse4_2", "ssse3", "pni", "avx", "avx2", "fma", "f16c", "bmi2"}
ZEN4 = AVX2_LAPTOP | {"avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"}
ZEN4 |= {"avx512vbmi", "avx512_vnni", "avx512_bf16"}
#: What llama_print_system_info() printed for the 0.3.36 build with AVX-512 switched on.
AVX512_BUILD = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
    "AVX512 = 1 | AVX512_VNNI = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | "
)


def test_an_avx2_cpu_gets_a_build_without_avx512() -> None:
    args = cmake_args(AVX2_LAPTOP).split()

    assert "-DGGML_NATIVE=OFF" in args
    assert {"-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON", "-DGGML_BMI2=ON"} <= set(args)
    assert {"-DGGML_AVX512=OFF", "-DGGML_AVX512_VNNI=OFF", "-DGGML_AVX512_BF16=OFF"} <= set(args)
    assert {"-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"} <= set(args)


def test_avx512_needs_all_five_subsets_and_amx_stays_off() -> None:
    assert "AVX512" in ggml_options(ZEN4)
    assert "AVX512" not in ggml_options(ZEN4 - {"avx512bw"})  # -mavx512bw would be illegal
    args = cmake_args(ZEN4 | {"amx_tile", "amx_int8", "amx_bf16"}).split()
    assert {"-DGGML_AVX512=ON", "-DGGML_AVX512_VNNI=ON", "-DGGML_AVX512_BF16=ON"} <= set(args)
    assert "-DGGML_AMX_INT8=OFF" in args


def test_the_wheel_cache_key_names_the_instruction_sets() -> None:
    laptop, zen4 = build_key(AVX2_LAPTOP), build_key(ZEN4)

    assert laptop != zen4
    assert laptop.endswith("-avx-avx2-bmi2-f16c-fma-sse42")
    assert "avx512_vnni" in zen4


def test_missing_for_reads_the_build_line() -> None:
    assert missing_for(AVX512_BUILD, ZEN4) == []
    assert missing_for(AVX512_BUILD, AVX2_LAPTOP) == ["AVX512", "AVX512_VNNI"]
    assert missing_for(AVX512_BUILD, set()) == []  # an unknown CPU: nothing to compare


def test_the_makefile_entry_point(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["key"]) == 0
    assert capsys.readouterr().out.strip()
    assert main(["nonsense"]) == 2
    assert "usage: python -m datawheel.models.cpu cmake-args|key" in capsys.readouterr().err
