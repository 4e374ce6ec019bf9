"""Answers from Anthropic's Messages API, spoken over plain HTTP (no SDK).

Example:
    >>> gen = AnthropicGenerator(GenerationConfig(provider="anthropic",
    ...     model="claude-3-5-haiku-latest", api_key="env:ANTHROPIC_API_KEY"))
    >>> gen.generate("What is X?", passages).text
    'X is ... [1]'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from datawheel.config import GenerationConfig, resolve_secret
from datawheel.errors import ConfigError
from datawheel.models.generators import generation_from, post_json, require_model
from datawheel.models.generators.base import Generation, Passage, prompt_messages

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"


class AnthropicGenerator:
    """POSTs ``{base_url}/v1/messages``; retries and errors as in ``post_json``."""

    def __init__(self, config: GenerationConfig) -> None:
        self.config = config
        self.model = require_model(config, "claude-3-5-haiku-latest")
        self.name = f"anthropic:{self.model}"
        self.url = (config.base_url or DEFAULT_BASE_URL).rstrip("/") + "/v1/messages"
        self.headers = {"anthropic-version": API_VERSION}
        if config.api_key:
            self.headers["x-api-key"] = resolve_secret(config.api_key)
        elif not config.base_url:  # a local proxy may not need one; Anthropic's API does
            raise ConfigError(
                "generation.api_key is required for provider anthropic: set it to "
                "env:ANTHROPIC_API_KEY and export that variable"
            )
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
        system, user = prompt_messages(question, passages, evidence)
        text = post_json(
            self._client,
            self.url,
            {
                "model": self.model,
                "system": system["content"],
                "messages": [user],
                "max_tokens": self.config.max_tokens,
                "temperature": min(self.config.temperature, 1.0),  # Anthropic allows 0-1
            },
            headers=self.headers,
            config=self.config,
            label="anthropic server",
            extract=_content,
        )
        return generation_from(text, passages, self.name)


def _content(answer: Any) -> Any:
    return answer["content"][0]["text"]
