"""``carnet serve``: Carnet over HTTP, uvicorn's workers forked from one preloaded server."""

from __future__ import annotations

from typing import Annotated

import typer

from carnet.cli.mllp import beside_http
from carnet.cli.platforms import migrated_platform


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
) -> None:
    """Serve Carnet over HTTP (Ctrl-C stops it cleanly)."""
    import uvicorn  # noqa: PLC0415

    from carnet.web.serving import (  # noqa: PLC0415
        EVENT_LOOP,
        HTTP_PROTOCOL,
        LOG_CONFIG,
        fork_workers_from_a_preloaded_server,
    )

    application = "carnet.app:served_app"
    fork_workers_from_a_preloaded_server(application)
    # The schema is checked once, here: a worker that refused to start would only be replaced
    # by another refusing the same way.
    with migrated_platform() as platform:
        settings = platform.settings
    # CARNET_MLLP_PORT: the MLLP listener runs in one child process of its own, not in each
    # HTTP worker nor in uvicorn's supervisor (``carnet.cli.mllp`` says why).
    with beside_http(settings):
        uvicorn.run(
            application,
            factory=True,
            host=host or settings.host,
            port=port or settings.port,
            workers=workers or settings.workers,
            timeout_worker_healthcheck=settings.worker_healthcheck_seconds,
            proxy_headers=False,
            server_header=False,
            log_level="info",
            # Applied again in each worker; requests are logged by AccessLog, without query strings.
            log_config=LOG_CONFIG,
            access_log=False,
            http=HTTP_PROTOCOL,
            loop=EVENT_LOOP,
        )
