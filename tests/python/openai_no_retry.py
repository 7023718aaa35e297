"""The official `openai` Python client, with its default retries, against an agent turn
that fails after the agent's tools ran: the gateway answers `x-should-retry: false`, and
the client must not send the request again (which would run the tools again).

Run by the Rust integration test
`it openai::an_agent_failing_after_its_tools_ran_tells_clients_not_to_retry`, with:

    AISOPOD_URL    https://127.0.0.1:PORT/v1
    AISOPOD_KEY    an API token with chat:write
    AISOPOD_CA     the device CA (data_dir/tls/ca.pem)
    AISOPOD_AGENT  the agent whose turn fails after a tool call

Prints "no retry ok" when the client raised the gateway's error after one request.
"""

import os
import ssl

import httpx2
import openai


def main():
    tls = ssl.create_default_context(cafile=os.environ["AISOPOD_CA"])
    requests = []
    http = httpx2.Client(
        verify=tls, event_hooks={"request": [lambda request: requests.append(request)]}
    )
    # The client's defaults: two retries on 5xx unless the server says otherwise.
    api = openai.OpenAI(
        base_url=os.environ["AISOPOD_URL"],
        api_key=os.environ["AISOPOD_KEY"],
        http_client=http,
    )
    assert api.max_retries == 2, api.max_retries
    try:
        api.chat.completions.create(
            model=os.environ["AISOPOD_AGENT"],
            messages=[{"role": "user", "content": "list the files"}],
        )
    except openai.APIStatusError as err:
        assert err.status_code == 502, err.status_code
        assert err.response.headers.get("x-should-retry") == "false", err.response.headers
        assert len(requests) == 1, f"the client sent {len(requests)} requests"
        print("no retry ok")
        return
    raise AssertionError("the turn should have failed")


if __name__ == "__main__":
    main()
