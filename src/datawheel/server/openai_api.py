"""OpenAI-compatible routes: ``/v1/models`` and ``/v1/chat/completions`` (streaming too).

The last user message is the question, searched together with the earlier user messages
when it is a follow-up ("and for jackets?"); the answer comes from the knowledge base with
numbered sources, limited to the documents the caller's groups may read. The response id is
``chatcmpl-<interaction id>`` and the ``datawheel`` field carries the interaction id, the
sources and the confidence, so a client can post feedback to ``/api/feedback``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from datawheel.errors import ConfigError
from datawheel.server.service import service, viewer
from datawheel.users import User

router = APIRouter(prefix="/v1")
MODEL = "datawheel"


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, max_tokens... are accepted
    model: str = MODEL
    messages: list[Message] = Field(min_length=1)
    stream: bool = False


def _questions(messages: list[Message]) -> list[str]:
    """The user messages' text, oldest first: the last is the question, the others the
    earlier turns a follow-up may lean on."""
    texts = []
    for message in messages:
        if message.role != "user":
            continue
        if isinstance(message.content, str):
            texts.append(message.content)
        else:
            parts = [p.get("text", "") for p in message.content or [] if p.get("type") == "text"]
            texts.append("\n".join(parts))
    if not texts:
        raise ConfigError("messages has no user message; send the question as role 'user'")
    return texts


def _conversation(user: str, questions: list[str]) -> str:
    """One id per chat: the same user and the same opening question."""
    return hashlib.sha256(f"{user}\n{questions[0]}".encode()).hexdigest()[:32]


@router.get("/models", summary="The models this server answers with")
def models(_: User = viewer) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "datawheel"}],
    }


@router.post("/chat/completions", summary="Answer the last user message from the knowledge base")
def chat(body: ChatRequest, request: Request, user: User = viewer) -> Any:
    svc = service(request)
    with svc.reading() as ws:
        questions = _questions(body.messages)
        answer = ws.ask(
            questions[-1],
            user=user.name,
            groups=user.filter_groups,
            conversation=_conversation(user.name, questions),
            earlier=questions[:-1],
        )
    svc.show_paths(answer.sources)
    content = answer.with_sources()
    ident, created = f"chatcmpl-{answer.id}", int(time.time())
    extra = {
        "interaction_id": answer.id,
        "confidence": answer.confidence,
        "declined": answer.declined,
        "conversation": answer.conversation,
        "asked_as": answer.asked_as,
        "sources": [s.__dict__ for s in answer.sources],
    }
    headers = {"X-Datawheel-Interaction": answer.id}
    if body.stream:
        return StreamingResponse(
            _stream(ident, created, content, extra),
            media_type="text/event-stream",
            headers=headers,
        )
    words = len(content.split())
    return _json(
        {
            "id": ident,
            "object": "chat.completion",
            "created": created,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": words, "total_tokens": words},
            "datawheel": extra,
        },
        headers,
    )


def _json(body: dict[str, Any], headers: dict[str, str]) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse(body, headers=headers)


def _stream(ident: str, created: int, content: str, extra: dict[str, Any]) -> Iterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> str:
        body = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **more,
        }
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    words = content.split(" ")
    for start in range(0, len(words), 8):
        piece = " ".join(words[start : start + 8])
        yield chunk({"content": piece if start == 0 else " " + piece})
    yield chunk({}, "stop", datawheel=extra)
    yield "data: [DONE]\n\n"
