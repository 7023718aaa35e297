"""The official `openai` Python client against a running aisopod gateway.

Unchanged but for its base URL, its key and the gateway's device CA; run by the Rust
integration test `it openai::the_official_openai_python_client_works_against_the_gateway`,
which starts the gateway and a scripted upstream and passes:

    AISOPOD_URL    https://127.0.0.1:PORT/v1
    AISOPOD_KEY    an API token with chat:write
    AISOPOD_CA     the device CA (data_dir/tls/ca.pem)
    AISOPOD_MODEL  a provider/model the gateway serves
    AISOPOD_AGENT  (optional) an agent whose upstream answers "agent answer", then
                   streams "agent response"

Each step prints "<step> ok"; any failure raises and exits non-zero.
"""

import os
import ssl
import sys

import httpx2
import openai


def client(key):
    tls = ssl.create_default_context(cafile=os.environ["AISOPOD_CA"])
    return openai.OpenAI(
        base_url=os.environ["AISOPOD_URL"],
        api_key=key,
        http_client=httpx2.Client(verify=tls),
        max_retries=0,
    )


def main():
    model = os.environ["AISOPOD_MODEL"]
    api = client(os.environ["AISOPOD_KEY"])

    ids = [m.id for m in api.models.list()]
    assert model in ids, ids
    print("models ok")

    chat = api.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}]
    )
    assert chat.choices[0].message.content == "plain answer", chat
    assert chat.usage.total_tokens == 5, chat.usage
    print("chat ok")

    pieces = []
    usage = None
    for chunk in api.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    ):
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
    assert "".join(pieces) == "streamed", pieces
    assert usage is not None and usage.total_tokens == 5, usage
    print("chat stream ok")

    response = api.responses.create(model=model, instructions="be brief", input="hi")
    assert response.output_text == "a response", response
    assert response.status == "completed", response
    print("responses ok")

    deltas = []
    completed = None
    for event in api.responses.create(model=model, input="hi", stream=True):
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
        elif event.type == "response.completed":
            completed = event.response
    assert "".join(deltas) == "streamed response", deltas
    assert completed is not None and completed.output_text == "streamed response", completed
    print("responses stream ok")

    agent = os.environ.get("AISOPOD_AGENT")
    if agent:
        assert agent in ids, ids
        chat = api.chat.completions.create(
            model=agent, messages=[{"role": "user", "content": "hi"}]
        )
        assert chat.choices[0].message.content == "agent answer", chat
        print("agent chat ok")

        deltas = []
        for event in api.responses.create(model=agent, input="hi", stream=True):
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        assert "".join(deltas) == "agent response", deltas
        print("agent responses stream ok")

    try:
        client("aisp_not-a-real-key").models.list()
    except openai.AuthenticationError as err:
        assert err.status_code == 401, err
        print("bad key ok")
    else:
        raise AssertionError("a bad key was accepted")


if __name__ == "__main__":
    try:
        main()
    except Exception as err:  # noqa: BLE001 - the test shows what failed
        print(f"failed: {type(err).__name__}: {err}", file=sys.stderr)
        raise
