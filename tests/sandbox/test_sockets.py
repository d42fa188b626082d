"""The stand-ins answer without Nagle's algorithm, as production servers do.

Their listening sockets are made by hand (to pick free ports) and handed to uvicorn; asyncio turns
Nagle off only on connections of a socket made with IPPROTO_TCP. Without it, every small response on a
kept-alive connection waited for the client's delayed ACK: 44 ms a request instead of 1 ms, which
made CRM writes look 40 times slower than the code that sends them.
"""

from __future__ import annotations

import asyncio
import socket

from connectors.sandbox.launcher import _bind


def test_connections_to_a_stand_in_socket_have_nagle_off() -> None:
    listening = _bind("127.0.0.1", 0)
    port = listening.getsockname()[1]
    seen: list[int] = []

    async def main() -> None:
        def accepted(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=listening)
        async with server:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(main())
    assert seen and seen[0] != 0, "the served connection has Nagle's algorithm on"
