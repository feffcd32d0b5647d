"""SIGTERM/SIGINT: cancel the running statement so the migration rolls back, then stop."""

from __future__ import annotations

import signal
import threading
from typing import Optional

from runner.errors import Interrupted


class StopSignal:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: Optional[int] = None
        self.connection = None  # the connection whose running query a signal cancels

    def install(self) -> None:
        self._previous = {
            signum: signal.signal(signum, self._handle) for signum in (signal.SIGTERM, signal.SIGINT)
        }

    def uninstall(self) -> None:
        for signum, handler in getattr(self, "_previous", {}).items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame) -> None:
        self.signum = signum
        self.event.set()
        connection = self.connection
        if connection is not None and not connection.closed:
            try:
                connection.cancel()
            except Exception:  # the query may have finished already; the flag still stops us
                pass

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    def check(self) -> None:
        if self.event.is_set():
            raise self.interrupted()

    def interrupted(self) -> Interrupted:
        signum = self.signum or signal.SIGTERM
        name = signal.Signals(signum).name
        return Interrupted(signum, f"stopped by {name}; the running migration was rolled back")

    def sleep(self, seconds: float) -> None:
        if self.event.wait(max(0.0, seconds)):
            raise self.interrupted()
