"""`carnet serve` answers without Nagle's delay, even on a socket uvicorn bound itself, and
forks its workers from a server that has already imported Carnet."""

from __future__ import annotations

import asyncio
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.context import ForkServerProcess

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from carnet.web.serving import NoDelayHttpToolsProtocol, fork_workers_from_a_preloaded_server


async def _app(scope: object, receive: object, send: object) -> None:  # pragma: no cover
    raise AssertionError("no request is sent")


def _accepted_nodelay(protocol_class: type[asyncio.Protocol]) -> int:
    """TCP_NODELAY on the server side of a connection accepted on a protocol-0 socket."""

    async def scenario() -> int:
        # As uvicorn binds it for several workers: no IPPROTO_TCP, so asyncio leaves Nagle on.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        config = Config(app=_app)
        config.load()
        state = ServerState()
        made: list[asyncio.Protocol] = []

        def factory() -> asyncio.Protocol:
            protocol = protocol_class(config=config, server_state=state, app_state={})  # type: ignore[call-arg]
            made.append(protocol)
            return protocol

        server = await asyncio.get_running_loop().create_server(factory, sock=listener)
        try:
            _reader, writer = await asyncio.open_connection(*listener.getsockname()[:2])
            for _ in range(500):
                if made:
                    break
                await asyncio.sleep(0.01)
            transport = made[0].transport  # type: ignore[attr-defined]
            accepted: socket.socket = transport.get_extra_info("socket")
            value = accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            writer.close()
            await writer.wait_closed()
            return value
        finally:
            server.close()
            await server.wait_closed()

    # In a thread of its own: another test's driver (Playwright's sync API) may have left an
    # event loop running in this one.
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(lambda: asyncio.run(scenario())).result()


def test_accepted_connections_have_nagle_off() -> None:
    assert _accepted_nodelay(NoDelayHttpToolsProtocol) != 0


def test_uvicorns_own_protocol_would_leave_it_on() -> None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    # The reason for NoDelayHttpToolsProtocol: if this starts failing, uvicorn fixed it upstream.
    assert _accepted_nodelay(HttpToolsProtocol) == 0


def test_workers_are_forked_from_a_preloaded_server(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn._subprocess

    # Restored after the test: both are process-wide.
    monkeypatch.setattr(uvicorn._subprocess, "spawn", uvicorn._subprocess.spawn)
    main = sys.modules["__main__"]
    monkeypatch.setattr(main, "__spec__", None)

    fork_workers_from_a_preloaded_server("carnet.app:create_app")

    # uvicorn builds its workers here; if it stops reading its module's ``spawn``, workers are
    # spawned again and each imports all of Carnet (tests/test_serve_restart.py).
    worker = uvicorn._subprocess.get_subprocess(Config(app=_app), _app, [])  # type: ignore[arg-type]
    assert isinstance(worker, ForkServerProcess)
    # Started as under ``python -m carnet``: the fork server does not import the CLI.
    assert main.__spec__ is not None
    assert main.__spec__.name == "carnet.__main__"
