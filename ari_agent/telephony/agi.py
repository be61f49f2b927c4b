"""FastAGI server: ``AGI(agi://host:port/<script>)`` from the dialplan, one asyncio task per call.

Not panoramisk's ``fast_agi.Application``: its header loop spins at 100 % CPU and freezes the event loop
when a client disconnects mid-header (reproduced; see the dependency notes). Here the header is read
with one bounded ``readuntil(b"\\n\\n")`` under a timeout, every command reply has a timeout too, and a
client that stalls or drops costs only its own task. Replies are parsed with panoramisk's
``parse_agi_result``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from panoramisk.utils import parse_agi_result

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 16 * 1024


class AgiError(Exception):
    """The AGI client sent something unusable, went away, or did not answer in time."""


@dataclass(frozen=True)
class AgiRequest:
    """The ``agi_*`` header Asterisk sends first (keys without the ``agi_`` prefix)."""

    headers: dict[str, str] = field(default_factory=dict)

    @property
    def script(self) -> str:
        """The path of the AGI URL (``agi://host/route`` → ``route``)."""
        return self.headers.get("network_script", "").strip("/")

    def get(self, key: str, default: str = "") -> str:
        return self.headers.get(key, default)


def parse_agi_header(raw: bytes) -> AgiRequest:
    headers: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.startswith("agi_"):
            headers[key[4:].strip()] = value.strip()
    if not headers:
        raise AgiError("no agi_ header")
    return AgiRequest(headers)


async def read_agi_header(reader: asyncio.StreamReader, timeout_s: float) -> AgiRequest:
    try:
        raw = await asyncio.wait_for(reader.readuntil(b"\n\n"), timeout_s)
    except TimeoutError:
        raise AgiError(f"no complete AGI header within {timeout_s:g}s") from None
    except asyncio.IncompleteReadError:
        raise AgiError("client closed the connection mid-header") from None
    except asyncio.LimitOverrunError:
        raise AgiError("AGI header too long") from None
    return parse_agi_header(raw)


class AgiChannel:
    """Commands to the channel behind one AGI connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout_s: float) -> None:
        self.reader = reader
        self.writer = writer
        self.timeout_s = timeout_s

    async def command(self, text: str) -> dict[str, object]:
        if "\n" in text or "\r" in text:
            raise AgiError("an AGI command is one line")
        self.writer.write(text.encode() + b"\n")
        try:
            await asyncio.wait_for(self.writer.drain(), self.timeout_s)
            line = await asyncio.wait_for(self.reader.readline(), self.timeout_s)
        except (TimeoutError, ConnectionError) as exc:
            raise AgiError(f"no reply to {text.split(' ', 1)[0]}: {type(exc).__name__}") from None
        if not line:
            raise AgiError("channel hung up")
        try:
            reply: dict[str, object] = parse_agi_result(line.decode("utf-8", "replace").strip())
        except ValueError:  # panoramisk: int('') on a line without a status code (found by tests/fuzz)
            raise AgiError(f"unreadable reply to {text.split(' ', 1)[0]} (no status code)") from None
        if "error" in reply:
            raise AgiError(f"{text.split(' ', 2)[:2]}: {reply}")
        return reply

    async def set_variable(self, name: str, value: str) -> None:
        safe = value.replace("\\", "\\\\").replace('"', '\\"')
        await self.command(f'SET VARIABLE {name} "{safe}"')


Handler = Callable[[AgiRequest, AgiChannel], Awaitable[None]]


class FastAgiServer:
    def __init__(self, handler: Handler, *, header_timeout_s: float = 5.0, command_timeout_s: float = 5.0) -> None:
        self.handler = handler
        self.header_timeout_s = header_timeout_s
        self.command_timeout_s = command_timeout_s
        self.server: asyncio.Server | None = None
        self.handled = 0
        self.refused = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 4573) -> int:
        """Listen; the port actually bound (pass 0 for any free one)."""
        self.server = await asyncio.start_server(self._accept, host, port, limit=MAX_HEADER_BYTES)
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            request = await read_agi_header(reader, self.header_timeout_s)
            await self.handler(request, AgiChannel(reader, writer, self.command_timeout_s))
            self.handled += 1
        except AgiError as exc:
            self.refused += 1
            log.warning("FastAGI client %s: %s", writer.get_extra_info("peername"), exc)
        except Exception:
            self.refused += 1
            log.exception("FastAGI handler failed")
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
