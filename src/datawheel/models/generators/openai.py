"""Answers from any OpenAI-compatible chat server: OpenAI itself, vLLM, llama.cpp, Ollama.

Example:
    >>> gen = OpenAIGenerator(GenerationConfig(provider="openai", model="gpt-4o-mini",
    ...     api_key="env:OPENAI_API_KEY"))
    >>> gen.generate("What is X?", passages).text
    'X is ... [1]'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from datawheel.config import GenerationConfig, resolve_secret
from datawheel.models.generators import generation_from, post_json, require_model
from datawheel.models.generators.base import Generation, Passage, prompt_messages

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAIGenerator:
    """POSTs ``{base_url}/chat/completions``; retries and errors as in ``post_json``."""

    def __init__(self, config: GenerationConfig) -> None:
        self.config = config
        self.model = require_model(config, "gpt-4o-mini")
        self.name = f"openai:{self.model}"
        self.url = (config.base_url or DEFAULT_BASE_URL).rstrip("/") + "/chat/completions"
        self.headers: dict[str, str] = {}
        if config.api_key:
            self.headers["Authorization"] = f"Bearer {resolve_secret(config.api_key)}"
        self._client: httpx.Client | None = None

    def generate(
        self,
        question: str,
        passages: Sequence[Passage],
        *,
        confidence: float = 1.0,
        evidence: Sequence[str] = (),
    ) -> Generation:
        if self._client is None:
            self._client = httpx.Client()
        text = post_json(
            self._client,
            self.url,
            {
                "model": self.model,
                "messages": prompt_messages(question, passages, evidence),
                "max_tokens": self.config.max_tokens,
                "temperature": self.config.temperature,
            },
            headers=self.headers,
            config=self.config,
            label="openai server",
            extract=_content,
        )
        return generation_from(text, passages, self.name)


def _content(answer: Any) -> Any:
    return answer["choices"][0]["message"]["content"]
