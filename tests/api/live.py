"""A live Cadence HTTP server in a thread (its own event loop and store), for the tests that
need real HTTP: schemathesis."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

import uvicorn

from cadence.api.app import create_app
from cadence.engine import accounts
from cadence.engine.runtime import open_runtime
from cadence.engine.scheduling import system_clock

from .conftest import PASSWORD, make_settings


class LiveServer:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.admin_token = ""
        self._ready = threading.Event()
        self._server: uvicorn.Server | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="live-cadence", daemon=True)

    def start(self) -> LiveServer:
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"the live server did not start: {self._error}")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(20)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        url = f"sqlite+aiosqlite:///{self.home / 'live.db'}"
        async with open_runtime(make_settings(self.home, url)) as runtime:
            async with runtime.db.transaction() as s:
                admin = await accounts.create_first_admin(
                    s, email="admin@example.com", password=PASSWORD, name="Admin",
                    team_name="Team", now=system_clock(),
                )  # fmt: skip
                _, self.admin_token = await accounts.issue_api_token(
                    s, admin, "schemathesis", system_clock()
                )
            app = create_app(runtime, setup_token="live-setup-token")
            config = uvicorn.Config(app, log_level="warning", lifespan="off")
            self._server = uvicorn.Server(config)
            self.sock.listen(64)
            task = asyncio.ensure_future(self._server.serve(sockets=[self.sock]))
            while not self._server.started and not task.done():
                await asyncio.sleep(0.02)
            self._ready.set()
            await task
