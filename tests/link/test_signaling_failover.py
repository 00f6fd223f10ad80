"""A peer given several signaling URLs stays on one that works and moves to the next
when its connection is lost; ``--signaling`` may be repeated or comma-separated."""

from __future__ import annotations

import argparse

import pytest
from aiohttp import web
from pydantic import SecretStr

from cloud_worker.settings import WorkerSettings
from edge_agent.settings import EdgeSettings
from link import SignalingClient
from link.signaling_backoff import signaling_urls
from shared.close_codes import CloseCode
from shared.messages import Role
from shared.settings import add_settings_arguments, settings_from_args
from signaling.app import create_app
from signaling.settings import SignalingSettings
from tests.support.apps import SECRET, token
from tests.support.onpath import close_code, on_path
from tests.support.redis import RedisServer, redis_server, unique_prefix
from tests.support.wait import eventually

__all__ = ["redis_server"]  # the session-wide real Redis (a fixture)


def test_urls_from_lists_and_commas() -> None:
    assert signaling_urls("ws://127.0.0.1:1/v1/signal") == ("ws://127.0.0.1:1/v1/signal",)
    assert signaling_urls(["ws://a:1/s, ws://b:2/s", "ws://a:1/s"]) == ("ws://a:1/s", "ws://b:2/s")
    with pytest.raises(ValueError, match="no signaling URL"):
        signaling_urls(" , ")


@pytest.mark.parametrize("cls", [EdgeSettings, WorkerSettings])
def test_signaling_flag_repeats(cls: type[EdgeSettings] | type[WorkerSettings]) -> None:
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser, cls)
    args = parser.parse_args(
        ["--signaling", "ws://127.0.0.1:1/v1/signal", "--signaling", "ws://127.0.0.1:2/v1/signal"]
    )
    settings = settings_from_args(cls, args)
    assert settings.signaling == "ws://127.0.0.1:1/v1/signal,ws://127.0.0.1:2/v1/signal"


def test_every_url_is_checked_at_construction() -> None:
    with pytest.raises(ValueError, match="plaintext"):
        SignalingClient("ws://127.0.0.1:1/v1/signal,ws://example.org:2/v1/signal", "t")


async def _start(app: web.Application, port: int = 0) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    return runner, f"ws://127.0.0.1:{runner.addresses[0][1]}/v1/signal"


async def test_fails_over_to_the_next_url_and_back() -> None:
    settings = SignalingSettings(secret=SecretStr(SECRET))
    first, url_a = await _start(create_app(settings))
    second, url_b = await _start(create_app(settings))
    client = SignalingClient(
        [url_a, url_b], token(Role.EDGE, "e1"), reconnect_min_s=0.05, reconnect_max_s=0.5
    )
    client.start()
    try:
        await client.wait_connected(30)
        assert client.url == url_a
        await first.cleanup()  # instance A goes away
        await eventually(
            lambda: client.connected and client.url == url_b, what="connected to B instead"
        )
        port_a = int(url_a.split(":")[2].split("/")[0])
        first, _ = await _start(create_app(settings), port_a)  # A is back; B goes away
        await second.cleanup()
        await eventually(
            lambda: client.connected and client.url == url_a, what="connected to A again"
        )
    finally:
        await client.aclose()
        await first.cleanup()
        await second.cleanup()


async def test_a_peer_that_moves_to_another_instance_resumes_its_id_there_at_once(
    redis_server: RedisServer,
) -> None:
    """Two instances on one Redis. The peer's path to instance A dies (stranded: A still
    lists the connection and hears nothing more) and A cannot be reached again, so the
    client moves to instance B, presenting its resume secret. B sends its digest to A,
    which closes the stranded connection as resumed (4010) and lets B admit the peer,
    though A's takeover probe would take a minute."""
    settings = SignalingSettings(
        secret=SecretStr(SECRET),
        redis_url=redis_server.url,
        redis_prefix=unique_prefix(),
        takeover_probe_s=60,
    )
    first, url_a = await _start(create_app(settings))
    second, url_b = await _start(create_app(settings))
    port_a = int(url_a.split(":")[2].split("/")[0])
    try:
        async with on_path(port_a) as path_to_a:
            via_a = f"ws://127.0.0.1:{path_to_a.port}/v1/signal"
            client = SignalingClient(
                [via_a, url_b], token(Role.EDGE, "e1"), reconnect_min_s=0.05, heartbeat_s=3600
            )
            client.start()
            try:
                await client.wait_connected(30)
                assert client.url == via_a
                path_to_a.strand()
                path_to_a.stop_listening()
                await client.reconnect()
                await eventually(
                    lambda: client.connected and client.url == url_b, what="welcomed by B"
                )
                code = await eventually(
                    lambda: close_code(path_to_a.stranded), what="A's connection closed"
                )
                assert code == CloseCode.RESUMED
            finally:
                await client.aclose()
    finally:
        await first.cleanup()
        await second.cleanup()
