"""Servers that misbehave on purpose: one accepts connections and never speaks."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field


@dataclass
class StallServer:
    """Accepts TCP connections and then says nothing, like a firewall that half-answers."""

    host: str = "127.0.0.1"
    port: int = 0
    _sock: socket.socket | None = None
    _conns: list[socket.socket] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> StallServer:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(64)
        sock.settimeout(0.2)
        self.port = sock.getsockname()[1]
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
        for conn in self._conns:
            conn.close()
        if self._sock:
            self._sock.close()

    def __enter__(self) -> StallServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
