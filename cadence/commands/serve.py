"""``cadence serve``: the whole product in one process — the HTTP API and the dashboard
(Uvicorn) and the workers (mailbox watchers, scheduler and sender, webhook delivery) as asyncio
tasks in the same loop.  SQLite by default.  SIGTERM or Ctrl-C stops it cleanly: the web
server stops taking requests, the sender finishes the message in hand, the watchers log out
(their checkpoints are in the store, so a restart resumes where they stopped).

On first run (no user yet) it prints a one-time URL that creates the first admin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator

import click

log = logging.getLogger("cadence.serve")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8000, show_default=True, help="Port to listen on.")
@click.option(
    "--no-workers",
    is_flag=True,
    help="Serve the API and dashboard only (the workers run elsewhere, e.g. `cadence run`).",
)
def serve(host: str, port: int, no_workers: bool) -> None:
    """Serve the API and the dashboard and run the workers, in one process."""
    if not 0 < port < 65536:
        raise click.BadParameter("a port is 1 to 65535", param_hint="--port")
    logging.getLogger("cadence").setLevel(
        min(logging.getLogger("cadence").getEffectiveLevel(), logging.INFO)
    )
    asyncio.run(run_server(host, port, workers=not no_workers))


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """Uvicorn without its own signal handling: ``cadence serve`` owns SIGTERM/SIGINT so
        that one signal stops the web server and the workers together."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return Server


def public_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def _bind(host: str, port: int) -> socket.socket:
    """Bind before anything is printed, so a busy port is one clear line, not a traceback."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}: {exc}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} "
            "(another program uses this port? try --port)"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


async def run_server(host: str, port: int, *, workers: bool = True) -> None:
    import uvicorn

    from cadence.api.app import create_app
    from cadence.api.deps import new_setup_token
    from cadence.engine.accounts import count_users
    from cadence.engine.events import WebhookDispatcher
    from cadence.engine.runtime import open_runtime
    from cadence.engine.scheduling import system_clock
    from cadence.workers.watcher import WatcherService, run_workers

    sock = _bind(host, port)
    async with open_runtime() as rt:
        async with rt.db.transaction() as s:
            first_run = await count_users(s) == 0
        setup_token = new_setup_token() if first_run else None
        dispatcher = WebhookDispatcher(rt.db, rt.secrets)
        service = WatcherService(rt.db, rt.secrets, system_clock, dispatcher=dispatcher)
        app = create_app(rt, setup_token=setup_token, watchers=service)
        config = uvicorn.Config(
            app, host=host, port=port, log_level="info", access_log=False, lifespan="off"
        )
        server = _server_class()(config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)

        url = public_url(host, port)
        click.echo(f"Cadence is running at {url}  (Ctrl-C or SIGTERM stops it)")
        click.echo(f"API docs: {url}/docs    health: {url}/healthz    metrics: {url}/metrics")
        if setup_token:
            click.echo(
                f"\nFirst run: create the first admin at\n  {url}/setup?token={setup_token}\n"
                "(this link works once)"
            )
        if not workers:
            click.echo("Workers are off (--no-workers): run `cadence run` to send and watch.")

        serving = asyncio.ensure_future(server.serve(sockets=[sock]))
        working = (
            asyncio.ensure_future(
                run_workers(rt, system_clock, stop, service=service, dispatcher=dispatcher)
            )
            if workers
            else None
        )
        stopping = asyncio.ensure_future(stop.wait())
        waiting: set[asyncio.Future[object]] = {serving, stopping}  # type: ignore[arg-type]
        if working is not None:
            waiting.add(working)  # type: ignore[arg-type]
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if working is not None and working in done and working.exception() is not None:
            log.error("the workers stopped: %s", working.exception())
        click.echo("Stopping: finishing the work in hand…")
        stop.set()
        server.should_exit = True
        stopping.cancel()
        results = await asyncio.gather(
            serving, *([working] if working is not None else []), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.error("shutdown: %s", result)
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)
        click.echo("Stopped.")
