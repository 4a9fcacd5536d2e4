"""``carnet mllp serve``: the MLLP listener alone; and the same listener beside ``carnet serve``.

``carnet serve`` runs the listener when ``CARNET_MLLP_PORT`` is set, in ONE child process of its
own (``beside_http``), started as ``carnet mllp serve`` and restarted if it dies; with
``CARNET_MLLP_PROCESSES`` above 1 that child supervises as many listener processes sharing the
port (``_supervise``). Why not in the
HTTP workers: there are several of them, and each would bind the port (or race for it), run its
own pool of handler threads and shut down with uvicorn's restarts of unhealthy workers; a
laboratory's connection would land on whichever accepted it. Why not in the supervisor's own
process: with one worker uvicorn serves HTTP in that very process, and with several its job is
to watch and restart workers — storing laboratory results there (threads holding the GIL and
database connections) would slow the watch, and a fault in the listener would take HTTP down.
A child process of its own costs one interpreter (about 100 MiB) and keeps both apart: HTTP
workers and the listener restart independently, and the listener's log lines are its own.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Annotated

import typer

from carnet.cli.platforms import fail, migrated_platform
from carnet.settings import Settings

log = logging.getLogger(__name__)
_CARNET = [sys.executable, "-m", "carnet"]

mllp_app = typer.Typer(
    help="The MLLP listener: HL7 v2 results from laboratories.", no_args_is_help=True
)


@mllp_app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Interface (default CARNET_MLLP_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default CARNET_MLLP_PORT).")] = None,
    processes: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Listener processes sharing the port (default CARNET_MLLP_PROCESSES).",
        ),
    ] = None,
    parent: Annotated[
        int | None,
        typer.Option(hidden=True, help="Stop when this process is no longer the parent."),
    ] = None,
    reuse_port: Annotated[
        bool, typer.Option(hidden=True, help="Share the port with sibling listener processes.")
    ] = False,
) -> None:
    """Receive HL7 v2 messages over MLLP until Ctrl-C or SIGTERM; ACK once committed."""
    from carnet.mllp import handling  # noqa: PLC0415 — the domain's imports for this command only
    from carnet.mllp.listener import ListenerLimits, run  # noqa: PLC0415

    with migrated_platform() as platform:
        settings = platform.settings
        chosen_port = port or settings.mllp_port
        if chosen_port is None:
            fail("No MLLP port: set CARNET_MLLP_PORT or pass --port.")
        context = _tls_context(settings)
        count = processes or settings.mllp_processes
        if count > 1:
            platform.close()
            _supervise(host or settings.mllp_host, chosen_port, count, parent)
            return
        limits = ListenerLimits(
            max_message_bytes=settings.mllp_max_message_bytes,
            idle_seconds=settings.mllp_idle_seconds,
            # One database connection per message being stored: as many threads as the pool.
            threads=settings.database_pool_size,
        )
        run(
            functools.partial(handling.handle, platform),
            limits,
            host=host or settings.mllp_host,
            port=chosen_port,
            ssl_context=context,
            parent_pid=parent,
            reuse_port=reuse_port,
        )


def _supervise(host: str, port: int, count: int, parent: int | None) -> None:
    """Run ``count`` listener processes on one port (SO_REUSEPORT) until told to stop.

    Why processes: a message's handling is Python work holding the GIL (parsing, the report's
    PDF, the ORM) more than waiting on PostgreSQL, so one process fills one core; the kernel
    spreads new connections over the processes, and each connection stays with the process that
    accepted it (its messages still handled in the order sent). Each child is restarted if it
    dies, as ``carnet serve`` restarts its one listener.
    """
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    command = [
        *_CARNET,
        "mllp",
        "serve",
        "--host",
        host,
        "--port",
        str(port),
        "--processes",
        "1",
        "--reuse-port",
        "--parent",
        str(os.getpid()),
    ]
    children = [_ListenerChild(command) for _ in range(count)]
    for child in children:
        child.start()
    log.info("MLLP listener: %d processes on %s:%d.", count, host, port)
    while not stop.wait(1.0):
        # Started by ``carnet serve`` (``--parent``): not to outlive it as an orphan.
        if parent is not None and os.getppid() != parent:
            log.warning("MLLP listener's parent %d is gone: stopping.", parent)
            break
    for child in children:
        child.signal_stop()
    for child in children:
        child.stop()


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The listener's TLS context from the settings, or None; a bad file fails in one line."""
    from carnet.mllp.listener import tls_context  # noqa: PLC0415

    if settings.mllp_tls_cert is None or settings.mllp_tls_key is None:
        return None
    try:
        return tls_context(
            settings.mllp_tls_cert, settings.mllp_tls_key, settings.mllp_tls_client_ca
        )
    except (OSError, ssl.SSLError) as error:
        fail(f"Cannot load the MLLP TLS files (CARNET_MLLP_TLS_*): {error}")


@contextlib.contextmanager
def beside_http(settings: Settings) -> Iterator[None]:
    """Run ``carnet mllp serve`` in a child process while the block runs, if a port is set.

    The child is restarted when it exits on its own (after 1 s, doubling up to 30 s while it
    keeps failing at once); at the end of the block it is asked to stop (SIGTERM) and given
    its grace period to answer the messages being stored.
    """
    if settings.mllp_port is None:
        yield
        return
    child = _ListenerChild()
    child.start()
    try:
        yield
    finally:
        child.stop()


class _ListenerChild:
    """The ``carnet mllp serve`` process of a ``carnet serve``, kept running by a thread."""

    STOP_SECONDS = 20.0  # the listener's grace (10 s) and the handler threads' last commits

    def __init__(self, command: list[str] | None = None) -> None:
        self._command = command or [*_CARNET, "mllp", "serve", "--parent", str(os.getpid())]
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._keep_running, name="mllp-child", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _keep_running(self) -> None:
        command = self._command
        delay = 1.0
        while not self._stopping.is_set():
            with self._lock:
                if self._stopping.is_set():
                    return
                self._process = subprocess.Popen(command)  # noqa: S603 — our own interpreter
            started = time.monotonic()
            code = self._process.wait()
            if self._stopping.is_set():
                return
            # A listener that ran a while and died is restarted at once; one that cannot start
            # (port taken, database down) is retried ever more slowly rather than in a loop.
            delay = 1.0 if time.monotonic() - started > 60 else min(delay * 2, 30.0)
            log.warning("The MLLP listener exited (%s); restarting in %.0f s.", code, delay)
            self._stopping.wait(delay)

    def signal_stop(self) -> None:
        """Ask the process to stop (SIGTERM) without waiting: siblings stop side by side."""
        with self._lock:
            self._stopping.set()
            process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        self.signal_stop()
        with self._lock:
            process = self._process
        if process is not None and process.poll() is None:
            try:
                process.wait(self.STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._thread.join(timeout=5)
