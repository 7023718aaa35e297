"""The official MCP Python SDK client against a running aisopod gateway's /mcp.

Unchanged but for the endpoint URL, the Authorization header and the gateway's device
CA; run by the Rust integration test
`it mcp::the_official_mcp_python_client_lists_and_calls_tools`, which starts the gateway
(agent `helper` with the shell and file tools) and answers approvals over /ws, and passes:

    AISOPOD_MCP_URL   https://127.0.0.1:PORT/mcp
    AISOPOD_KEY       an API token with chat:write and agent:manage
    AISOPOD_CA        the device CA (data_dir/tls/ca.pem)
    AISOPOD_COMMAND   a command the command filter sends to a person; the test allows
                      the first request and denies the second

Each step prints "<step> ok"; any failure raises and exits non-zero.
"""

import asyncio
import os
import ssl

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError


def text_of(result):
    return "".join(part.text for part in result.content if part.type == "text")


async def main():
    tls = ssl.create_default_context(cafile=os.environ["AISOPOD_CA"])
    headers = {"Authorization": f"Bearer {os.environ['AISOPOD_KEY']}"}
    command = os.environ["AISOPOD_COMMAND"]
    async with httpx2.AsyncClient(headers=headers, verify=tls, timeout=120) as http:
        transport = streamable_http_client(os.environ["AISOPOD_MCP_URL"], http_client=http)
        async with Client(transport) as client:
            assert client.protocol_version == "2025-11-25", client.protocol_version
            tools = await client.list_tools()
            names = sorted(tool.name for tool in tools.tools)
            assert "helper" in names and "helper__shell" in names, names
            print("list ok", flush=True)

            written = await client.call_tool(
                "helper__write_file", {"path": "sdk.txt", "content": "from the SDK"}
            )
            assert not written.is_error, text_of(written)
            read = await client.call_tool("helper__read_file", {"path": "sdk.txt"})
            assert not read.is_error and "from the SDK" in text_of(read), text_of(read)
            print("call ok", flush=True)

            progress = []

            async def on_progress(done, total, message):
                progress.append(message)

            approved = await client.call_tool(
                "helper__shell", {"command": command}, progress_callback=on_progress
            )
            assert not approved.is_error, text_of(approved)
            assert "42: 2 3 7" in text_of(approved), text_of(approved)
            assert any("approve" in (m or "") for m in progress), progress
            print("approved ok", flush=True)

            denied = await client.call_tool("helper__shell", {"command": command})
            assert denied.is_error, text_of(denied)
            assert "not approved" in text_of(denied), text_of(denied)
            print("denied ok", flush=True)

            filtered = await client.call_tool("helper__shell", {"command": "rm -rf /"})
            assert filtered.is_error, text_of(filtered)
            print("filtered ok", flush=True)

            try:
                await client.call_tool("helper__shell", {"command": 42})
            except MCPError as err:
                assert err.error.code == -32602, err.error
                print("bad arguments ok", flush=True)
            else:
                raise AssertionError("wrongly typed arguments were accepted")


if __name__ == "__main__":
    asyncio.run(main())
