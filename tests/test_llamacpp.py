"""The real SmolLM2 GGUF through llama-cpp-python, in process and behind llama.cpp's server.

llama_cpp is imported plainly: `make test` installs it (`make llm`), so a missing package
is a failure here, not a skip.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import llama_cpp  # noqa: F401  (the [llm] extra must be installed)
import pytest

from datawheel.config import GenerationConfig
from datawheel.errors import ConfigError, MissingExtraError
from datawheel.models.generators import Generation, Passage, load_generator
from datawheel.models.generators.llamacpp import LlamaCppGenerator, gguf_path
from datawheel.models.generators.openai import OpenAIGenerator

PASSAGES = [
    Passage(1, "c1", "Geography", "France", "Paris is the capital of France.", 0.9),
    Passage(2, "c2", "Landmarks", "", "The Eiffel Tower stands in Paris.", 0.7),
]
QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def smollm2() -> Path:
    return gguf_path("builtin:smollm2")


def test_builtin_model_is_the_packaged_gguf(smollm2: Path) -> None:
    assert smollm2.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert smollm2.is_file()


def test_missing_gguf_is_a_config_error(tmp_path: Path) -> None:
    config = GenerationConfig(provider="llamacpp", model=str(tmp_path / "nope.gguf"))
    with pytest.raises(ConfigError, match=r"nope.gguf' is not a file; give the path to a .gguf"):
        LlamaCppGenerator(config)


def test_missing_llama_cpp_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if it were not installed
    config = GenerationConfig(provider="llamacpp", model="builtin:smollm2")
    with pytest.raises(MissingExtraError) as caught:
        LlamaCppGenerator(config)
    assert str(caught.value) == (
        "llama-cpp-python (for generation.provider llamacpp) is not available - install it "
        "with: pip install 'datawheel[llm]' (in a datawheel checkout, `make llm` builds and "
        "installs it)"
    )


class Unused:
    name = "unused"

    def generate(self, question: str, passages: Sequence[Passage]) -> Generation:
        raise AssertionError("the llama.cpp generator should have answered")


def test_answers_from_passages(smollm2: Path) -> None:
    config = GenerationConfig(provider="llamacpp", model="builtin:smollm2", max_tokens=48)
    gen = load_generator(config, Unused())

    result = gen.generate(QUESTION, PASSAGES)

    assert result.text.strip()
    assert result.generator == gen.name == "llamacpp:SmolLM2-135M-Instruct.Q4_1"
    assert result.warnings == []
    assert set(result.cited) <= {1, 2}


@pytest.fixture(scope="module")
def llama_server(smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama.cpp's own OpenAI-compatible server on a free port; yields its /v1 URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    args = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2)]
    args += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"]
    args += ["--n_threads", str(os.cpu_count() or 1), "--verbose", "False"]
    # Output to a file, not a pipe: a pipe nobody reads would stall the server once full.
    with log.open("w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server gave no /v1/models in 60 s:\n{log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_openai_generator_against_llama_cpp_server(llama_server: str) -> None:
    gen = OpenAIGenerator(
        GenerationConfig(
            provider="openai", model="smollm2", base_url=llama_server, max_tokens=48, timeout_s=60
        )
    )

    result = gen.generate(QUESTION, PASSAGES)

    assert result.text.strip()
    assert result.generator == "openai:smollm2"
    assert set(result.cited) <= {1, 2}
