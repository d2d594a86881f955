"""The bridge's JetStream publisher against a real nats-server: acks resolve to stream
sequences, errors and silence fail the publish they belong to, and room for more
publishes comes back however a publish ends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import nats.errors
import nats.js.errors
import pytest
from sealbus.nats.publisher import Publisher, PublishTimeout
from test_nats_bridge import Server, pytestmark  # noqa: F401  (same skip and marks)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path)
    try:
        yield s
    finally:
        s.stop()


def _run(
    url: str, body: Callable[[Any, Publisher], Awaitable[None]], *, max_in_flight: int = 8, timeout: float = 2.0
) -> None:
    async def main() -> None:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            await js.add_stream(name="T", subjects=["t.>"])
            publisher = await Publisher(nc, max_in_flight, timeout).start()
            try:
                await body(nc, publisher)
            finally:
                await publisher.close()
        finally:
            await nc.close()

    asyncio.run(main())


def test_acks_resolve_to_stream_sequences(server: Server) -> None:
    async def body(nc: Any, p: Publisher) -> None:
        futures = [await p.publish("t.a", b"%d" % i, {"Nats-Msg-Id": f"m{i}"}) for i in range(20)]
        assert await asyncio.gather(*futures) == list(range(1, 21))
        assert p.in_flight == 0
        # A duplicate is acked with the sequence of the message it duplicates.
        assert await (await p.publish("t.a", b"again", {"Nats-Msg-Id": "m3"})) == 4

    _run(server.url, body)


def test_no_stream_fails_with_no_responders(server: Server) -> None:
    async def body(nc: Any, p: Publisher) -> None:
        with pytest.raises(nats.js.errors.NoStreamResponseError):
            await (await p.publish("nowhere.a", b"x"))
        assert p.in_flight == 0

    _run(server.url, body)


def test_jetstream_error_fails_that_publish_only(server: Server) -> None:
    async def body(nc: Any, p: Publisher) -> None:
        good = await p.publish("t.a", b"ok")
        bad = await p.publish("t.a", b"x", {"Nats-Expected-Stream": "OTHER"})
        with pytest.raises(nats.js.errors.APIError) as err:
            await bad
        assert err.value.err_code == 10060  # expected stream does not match
        assert await good == 1

    _run(server.url, body)


def test_silence_times_out_and_frees_room(server: Server) -> None:
    async def body(nc: Any, p: Publisher) -> None:
        await nc.subscribe("quiet.a")  # takes the message and never answers
        started = time.monotonic()
        first = [await p.publish("quiet.a", b"x") for _ in range(2)]
        # Both slots are taken: the third publish waits until a deadline frees one.
        third = await p.publish("t.a", b"y")
        waited = time.monotonic() - started
        for f in first:
            with pytest.raises(PublishTimeout):
                await f
        assert waited >= 0.3
        assert await third == 1
        assert p.in_flight == 0

    _run(server.url, body, max_in_flight=2, timeout=0.4)


def test_closed_connection_fails_the_publish_and_frees_room(server: Server) -> None:
    async def body(nc: Any, p: Publisher) -> None:
        await nc.close()
        for _ in range(3):  # more than max_in_flight: no slot is lost to a failure
            with pytest.raises(nats.errors.ConnectionClosedError):
                await (await p.publish("t.a", b"x"))
        assert p.in_flight == 0

    _run(server.url, body, max_in_flight=2)
