"""The real SmolLM2 GGUF through llama-cpp-python, in a child process and behind its server.

`make test` installs llama_cpp (`make llm`), so a missing package is a failure here, not a
skip. It is never loaded into the test process itself: a build for instructions this CPU
lacks would kill the whole run with SIGILL, so every load happens in a child process and a
crash is a failed test that says why.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from datawheel.config import GenerationConfig
from datawheel.errors import ConfigError, MissingExtraError
from datawheel.models import native
from datawheel.models.cpu import cpu_flags
from datawheel.models.generators import Generation, Passage, load_generator
from datawheel.models.generators.llamacpp import LlamaCppGenerator, gguf_path
from datawheel.models.generators.openai import OpenAIGenerator

assert importlib.util.find_spec("llama_cpp"), "the [llm] extra must be installed (make llm)"

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


class Extractive:
    name = "extractive"

    def generate(
        self, question: str, passages: Sequence[Passage], *, confidence: float = 1.0
    ) -> Generation:
        return Generation(f"{passages[0].text} [1]", [1], self.name)


ANSWER_IN_A_CHILD = textwrap.dedent(
    """
    import json, sys
    from datawheel.config import GenerationConfig
    from datawheel.models.generators import load_generator
    from datawheel.models.generators.extractive import ExtractiveGenerator
    from datawheel.models.generators.base import Passage

    passages = [Passage(*row) for row in json.loads(sys.argv[1])]
    config = GenerationConfig(provider="llamacpp", model="builtin:smollm2", max_tokens=48)
    words = lambda texts: [t.lower().split() for t in texts]  # noqa: E731
    gen = load_generator(config, ExtractiveGenerator(words))
    result = gen.generate(sys.argv[2], passages)
    print(json.dumps({"text": result.text, "generator": result.generator,
                      "warnings": result.warnings, "cited": result.cited}))
    """
)


def test_answers_from_passages_in_a_child_process(tmp_path: Path) -> None:
    rows = json.dumps([dataclasses.astuple(p) for p in PASSAGES])
    env = {**os.environ, "DATAWHEEL_CACHE": str(tmp_path)}  # a fresh CPU check, not a cached one
    done = subprocess.run(
        [sys.executable, "-c", ANSWER_IN_A_CHILD, rows, QUESTION],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )

    if done.returncode < 0:
        pytest.fail(f"the child died of {signal.Signals(-done.returncode).name}:\n{done.stderr}")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["warnings"] == [], "llama.cpp did not answer; the fallback did"
    assert result["text"].strip()
    assert result["generator"] == "llamacpp:SmolLM2-135M-Instruct.Q4_1"
    assert set(result["cited"]) <= {1, 2}


def test_the_installed_build_runs_on_this_cpu(smollm2: Path, tmp_path: Path) -> None:
    check = native.check_llama(smollm2, tmp_path)

    assert check.ok, check.reason
    assert "AVX" in check.system_info or not cpu_flags()  # the build names its instruction sets
    assert native.missing_for(check.system_info, cpu_flags()) == []
    assert (tmp_path / "native-checks.json").is_file()  # the verdict is kept for next time


def test_a_build_for_features_the_cpu_lacks_falls_back_with_the_reason(
    smollm2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on a CPU without the instruction sets the installed build reports (AVX2 and up).
    monkeypatch.setattr(native, "cpu_flags", lambda: {"sse4_2", "ssse3", "pni"})
    monkeypatch.setenv("DATAWHEEL_CACHE", str(tmp_path))
    config = GenerationConfig(provider="llamacpp", model="builtin:smollm2", max_tokens=48)
    gen = load_generator(config, Extractive())

    first = gen.generate(QUESTION, PASSAGES)
    second = gen.generate(QUESTION, PASSAGES)

    assert first.generator == second.generator == "extractive"
    assert first.text == "Paris is the capital of France. [1]"
    (warning,) = first.warnings
    assert warning.startswith(
        "llamacpp:SmolLM2-135M-Instruct.Q4_1 cannot run here: the llama.cpp library was built for "
    )
    assert "AVX2" in warning and "which this CPU lacks" in warning
    assert second.warnings == first.warnings  # no second child process, the same reason


def test_a_child_killed_by_an_illegal_instruction_is_reported(
    smollm2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A llama_cpp package that dies the way a wrong build does, as soon as it is imported.
    fake = tmp_path / "site" / "llama_cpp"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("import signal\nsignal.raise_signal(signal.SIGILL)\n")
    (fake / "libllama.so").write_bytes(b"")
    monkeypatch.syspath_prepend(str(fake.parent))
    monkeypatch.setenv("PYTHONPATH", str(fake.parent))

    check = native.check_llama(smollm2, tmp_path / "cache")

    assert not check.ok
    assert check.reason == "llama.cpp stopped on an illegal instruction (built for another CPU)"


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
