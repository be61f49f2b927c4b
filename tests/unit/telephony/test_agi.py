"""The FastAGI server's protocol handling over real loopback sockets: header parsing, command replies,
and clients that stall or drop mid-header (panoramisk's handler spins at 100 % CPU there; ours drops
only that client and keeps serving others)."""

from __future__ import annotations

import asyncio

import pytest

from ari_agent.telephony.agi import AgiChannel, AgiError, AgiRequest, FastAgiServer, parse_agi_header

HEADER = (b"agi_network: yes\nagi_network_script: route\nagi_request: agi://127.0.0.1/route\n"
          b"agi_channel: PJSIP/1-00000001\nagi_callerid: 5551234\nagi_dnid: 8000\nagi_arg_1: 8000\n\n")


def test_parse_header() -> None:
    req = parse_agi_header(HEADER)
    assert req.script == "route" and req.get("callerid") == "5551234" and req.get("arg_1") == "8000"
    with pytest.raises(AgiError):
        parse_agi_header(b"hello\n\n")


async def serve(handler_log: list[AgiRequest], header_timeout_s: float = 0.5) -> tuple[FastAgiServer, int]:
    async def handler(req: AgiRequest, ch: AgiChannel) -> None:
        handler_log.append(req)
        await ch.set_variable("ARI_AGENT_ROUTE", 'queue "x"')

    server = FastAgiServer(handler, header_timeout_s=header_timeout_s, command_timeout_s=1.0)
    return server, await server.start("127.0.0.1", 0)


async def agi_client(port: int) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HEADER)
    cmd = await reader.readline()
    writer.write(b"200 result=1\n")
    await writer.drain()
    rest = await reader.read()
    writer.close()
    return [cmd, rest]


async def test_a_whole_request_is_handled() -> None:
    seen: list[AgiRequest] = []
    server, port = await serve(seen)
    try:
        cmd, rest = await agi_client(port)
        assert cmd == b'SET VARIABLE ARI_AGENT_ROUTE "queue \\"x\\""\n'
        assert rest == b"" and seen[0].script == "route" and server.handled == 1
    finally:
        await server.close()


async def test_half_open_and_dropped_clients_do_not_stall_the_next_call() -> None:
    seen: list[AgiRequest] = []
    server, port = await serve(seen)
    try:
        _, stalled = await asyncio.open_connection("127.0.0.1", port)
        stalled.write(b"agi_network: yes\nagi_chan")  # half a header, then nothing
        _, dropped = await asyncio.open_connection("127.0.0.1", port)
        dropped.write(b"agi_network: yes\n")
        await dropped.drain()
        dropped.close()  # gone mid-header
        cmd, _ = await agi_client(port)  # served while the stalled one is still open
        assert cmd.startswith(b"SET VARIABLE") and server.handled == 1
        while server.refused < 2:  # the dropped one at once, the stalled one at its header timeout
            await asyncio.sleep(0.05)
        stalled.close()
    finally:
        await server.close()


async def test_a_hung_up_channel_is_an_agi_error() -> None:
    errors: list[str] = []

    async def handler(req: AgiRequest, ch: AgiChannel) -> None:
        try:
            await ch.command("GET VARIABLE X")
        except AgiError as exc:
            errors.append(str(exc))

    server = FastAgiServer(handler, header_timeout_s=1.0, command_timeout_s=1.0)
    port = await server.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(HEADER)
        await reader.readline()
        writer.write(b"HANGUP\n")  # not a "200 result=" line
        writer.close()
        while not errors and server.handled == 0:
            await asyncio.sleep(0.05)
        assert server.handled == 1
    finally:
        await server.close()
