"""End to end against a real uvicorn on 127.0.0.1: the official openai client, streaming,
feedback on a chat answer, and the JSON API over the wire."""

from __future__ import annotations

import httpx
import openai
import pytest
from _kb import QUESTIONS, Keys, bearer

from datawheel.workspace import Workspace

Live = tuple[str, Workspace, Keys]


def test_openai_client_gets_a_cited_answer_and_can_vote_on_it(live: Live) -> None:
    url, ws, keys = live
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=keys.alice, max_retries=0)
    assert [m.id for m in client.models.list().data] == ["datawheel"]
    response = client.chat.completions.create(
        model="datawheel",
        messages=[
            {"role": "system", "content": "Answer from the company handbook."},
            {"role": "user", "content": QUESTIONS["sales"][2]},
        ],
    )
    content = response.choices[0].message.content or ""
    assert "25 dollars" in content and "[1]" in content and "Sources:" in content
    extra = response.model_extra or {}
    interaction_id = extra["datawheel"]["interaction_id"]
    assert response.id == f"chatcmpl-{interaction_id}"
    assert ws.interactions.get(interaction_id).user == "alice"

    voted = httpx.post(
        f"{url}/api/feedback",
        json={"interaction_id": interaction_id, "vote": "up"},
        headers=bearer(keys.alice),
    )
    assert voted.status_code == 200
    assert [f.vote for f in ws.interactions.feedback([interaction_id])] == ["up"]


def test_a_chat_follow_up_is_read_with_the_earlier_turn(live: Live) -> None:
    url, ws, keys = live
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=keys.alice, max_retries=0)
    first = QUESTIONS["sales"][2]
    response = client.chat.completions.create(
        model="datawheel",
        messages=[
            {"role": "user", "content": first},
            {"role": "assistant", "content": "25 dollars per seat [1]"},
            {"role": "user", "content": "and the Enterprise plan?"},
        ],
    )
    extra = (response.model_extra or {})["datawheel"]
    assert extra["asked_as"] == f"{first} the Enterprise plan?"
    turn = ws.interactions.get(extra["interaction_id"])
    assert turn.question == "and the Enterprise plan?"  # logged as typed
    assert turn.asked_as == extra["asked_as"] and turn.conversation == extra["conversation"]
    alone = client.chat.completions.create(
        model="datawheel", messages=[{"role": "user", "content": first}]
    )
    assert (alone.model_extra or {})["datawheel"]["asked_as"] is None


def test_streaming_gives_the_same_answer_in_pieces(live: Live) -> None:
    url, _, keys = live
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=keys.bob, max_retries=0)
    question = QUESTIONS["hr"][3]
    whole = client.chat.completions.create(
        model="datawheel", messages=[{"role": "user", "content": question}]
    )
    pieces, ids, finish = [], set(), None
    stream = client.chat.completions.create(
        model="datawheel", messages=[{"role": "user", "content": question}], stream=True
    )
    for chunk in stream:
        ids.add(chunk.id)
        delta = chunk.choices[0].delta.content
        if delta:
            pieces.append(delta)
        finish = chunk.choices[0].finish_reason or finish
    assert len(pieces) > 1 and finish == "stop" and len(ids) == 1
    assert "".join(pieces) == whole.choices[0].message.content


def test_openai_client_errors_are_clear(live: Live) -> None:
    url, ws, keys = live
    bad = openai.OpenAI(base_url=f"{url}/v1", api_key="dw_00000000_" + "x" * 30, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        bad.chat.completions.create(model="datawheel", messages=[{"role": "user", "content": "hi"}])
    # the client hands over the "error" field of our one error shape as .body
    assert caught.value.status_code == 401 and "unknown API key" in str(caught.value.body)
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=keys.bob, max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="datawheel", messages=[{"role": "system", "content": "no question here"}]
        )
    assert "no user message" in str(caught.value.body)


def test_html_in_questions_is_kept_as_text(live: Live) -> None:
    url, ws, keys = live
    question = "<script>alert(1)</script> how long do free trials last?"
    answer = httpx.post(
        f"{url}/api/ask", json={"question": question}, headers=bearer(keys.alice)
    ).json()
    assert ws.interactions.get(answer["id"]).question == question
    assert "14 days" in answer["text"]
