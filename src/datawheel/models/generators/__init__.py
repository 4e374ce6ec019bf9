"""Answer generators: the offline extractive one and LLM backends behind one Protocol.

``load_generator`` picks the backend named by ``generation.provider`` and wraps it in a
``FallbackGenerator``, so an LLM server that is down, slow or answering garbage costs a
visible warning on the answer, never the answer itself.

Example:
    >>> from datawheel.config import GenerationConfig
    >>> gen = load_generator(GenerationConfig(provider="openai", model="gpt-4o-mini",
    ...     base_url="http://localhost:8000/v1"), fallback=extractive)
    >>> gen.generate("What is X?", passages).warnings  # [] unless the server failed
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from datawheel.config import GenerationConfig
from datawheel.errors import ConfigError, DatawheelError
from datawheel.models.generators.base import (
    DECLINE_TEXT,
    Generation,
    Generator,
    Passage,
    cited_numbers,
)

__all__ = [
    "FallbackGenerator",
    "Generation",
    "Generator",
    "GeneratorError",
    "Passage",
    "load_generator",
]

log = logging.getLogger(__name__)

_BACKOFF_S = 0.5  # first wait between tries; doubles each retry
_BACKOFF_CAP_S = 8.0


class GeneratorError(DatawheelError):
    """An LLM backend failed after its retries; ``reason`` is the short what-failed part."""

    def __init__(self, reason: str, hint: str) -> None:
        super().__init__(f"{reason}; {hint}")
        self.reason = reason


class FallbackGenerator:
    """Answer with ``primary``; when it fails, answer with ``fallback`` and say so.

    The warning lands in ``Generation.warnings`` so the user sees that the answer came
    from the fallback, and why.
    """

    def __init__(self, primary: Generator, fallback: Generator) -> None:
        self.primary = primary
        self.fallback = fallback
        self.name = primary.name

    @property
    def selector(self) -> Any:
        """The extractive fallback's answer selector (it also picks the prompt's evidence)."""
        return self.fallback.selector  # type: ignore[attr-defined]

    def adapted(self, weights: dict[str, Any]) -> FallbackGenerator:
        """This generator with selector weights learned from feedback (a model version's)."""
        return FallbackGenerator(self.primary, self.fallback.adapted(weights))  # type: ignore[attr-defined]

    def generate(
        self, question: str, passages: Sequence[Passage], *, confidence: float = 1.0
    ) -> Generation:
        evidence = getattr(self.fallback, "evidence", None)
        try:
            return self.primary.generate(
                question,
                passages,
                confidence=confidence,
                evidence=evidence(question, passages) if evidence else (),
            )
        except (GeneratorError, httpx.HTTPError) as exc:
            reason = exc.reason if isinstance(exc, GeneratorError) else f"{self.name}: {exc}"
            log.warning("%s; answering with %s instead", exc, self.fallback.name)
            generation = self.fallback.generate(question, passages, confidence=confidence)
            generation.warnings.append(
                f"{reason}; answered with the {self.fallback.name} generator instead"
            )
            return generation


def load_generator(config: GenerationConfig, fallback: Generator) -> Generator:
    """The generator ``config.provider`` names, falling back to ``fallback`` on failure.

    Constructors are cheap: a local model is loaded on the first answer. Bad settings
    (a missing model name, an unset ``env:`` key, a missing .gguf) raise ConfigError now.
    """
    primary: Generator
    if config.provider == "extractive":
        return fallback
    if config.provider == "openai":
        from datawheel.models.generators.openai import OpenAIGenerator

        primary = OpenAIGenerator(config)
    elif config.provider == "anthropic":
        from datawheel.models.generators.anthropic import AnthropicGenerator

        primary = AnthropicGenerator(config)
    elif config.provider == "llamacpp":
        from datawheel.models.generators.llamacpp import LlamaCppGenerator

        primary = LlamaCppGenerator(config)
    else:  # pragma: no cover - pydantic's Literal already rejects it
        raise ConfigError(
            f"generation.provider {config.provider!r} is unknown; "
            "valid: extractive, llamacpp, openai, anthropic"
        )
    return FallbackGenerator(primary, fallback)


def require_model(config: GenerationConfig, example: str) -> str:
    """``config.model``, or a ConfigError that says what to put there."""
    if not config.model:
        raise ConfigError(
            f"generation.model is required for provider {config.provider} (e.g. {example})"
        )
    return config.model


def generation_from(text: str, passages: Sequence[Passage], name: str) -> Generation:
    """Wrap an LLM's answer: its citations, and whether it declined."""
    text = text.strip()
    return Generation(
        text=text,
        cited=cited_numbers(text, len(passages)),
        generator=name,
        # Small models often drop the final period of the decline sentence.
        declined=text.startswith(DECLINE_TEXT.rstrip(".")),
    )


def post_json(
    client: httpx.Client,
    url: str,
    body: Mapping[str, Any],
    *,
    headers: Mapping[str, str],
    config: GenerationConfig,
    label: str,
    extract: Callable[[Any], Any],
) -> str:
    """POST ``body`` to ``url`` and return ``extract(response_json)``, retrying with backoff.

    Connection errors, timeouts, HTTP 429/5xx and malformed answers (not JSON, or
    ``extract`` raising KeyError/IndexError/TypeError or returning a non-string) are tried
    ``config.retries`` more times, waiting 0.5 s, 1 s, 2 s... in between. Any other HTTP
    error is final at once. ``label`` names the server in messages, e.g. "openai server".
    """
    where = f"{label} at {url}"
    tries = config.retries + 1
    reason = hint = ""
    for attempt in range(tries):
        if attempt:
            time.sleep(min(_BACKOFF_S * 2 ** (attempt - 1), _BACKOFF_CAP_S))
        try:
            response = client.post(url, json=body, headers=dict(headers), timeout=config.timeout_s)
        except httpx.TimeoutException:
            reason = f"{where} timed out after {config.timeout_s:g}s"
            hint = "check that the server is up and not overloaded, or raise generation.timeout_s"
        except httpx.HTTPError as exc:
            reason = f"{where} could not be reached ({type(exc).__name__}: {exc})"
            hint = "start the server or fix generation.base_url"
        else:
            status = response.status_code
            if status == 429 or status >= 500:
                reason = f"{where} answered HTTP {status}: {_snippet(response)}"
                hint = "the server is overloaded or failing; try again later"
            elif status >= 400:
                raise GeneratorError(
                    f"{where} answered HTTP {status}: {_snippet(response)}", _hint(status)
                )
            else:
                try:
                    text = extract(response.json())
                    if not isinstance(text, str):
                        raise TypeError(f"expected text, got {type(text).__name__}")
                    return text
                except (ValueError, KeyError, IndexError, TypeError) as exc:
                    reason = f"{where} returned malformed JSON ({type(exc).__name__}: {exc})"
                    hint = f"check that generation.base_url is right for provider {config.provider}"
        log.info("%s (try %d of %d)", reason, attempt + 1, tries)
    raise GeneratorError(reason, f"tried {tries} times; {hint}" if tries > 1 else hint)


def _snippet(response: httpx.Response) -> str:
    return " ".join(response.text.split())[:200] or "(empty body)"


def _hint(status: int) -> str:
    if status in (401, 403):
        return "check generation.api_key (an env:VAR_NAME whose variable holds a valid key)"
    if status == 404:
        return "check generation.base_url and generation.model"
    return "check the generation settings in datawheel.yaml"
