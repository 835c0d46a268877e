"""Model calls off the event loop, newest request first.

:class:`ModelRunner` owns one worker thread: PyTorch already spreads one call over every core, so
a second thread would only make calls compete (and keypoint detectors are not thread-safe).
Requests may name a *channel* (the page uses one per tab and purpose, e.g. ``tab3:transfer``).
When a newer request arrives on a channel, an older one that has not started yet is dropped
without running, and one that is already running has its result discarded: both end in
:class:`~glocal_cli.serve.engine.SupersededError` (HTTP 409). So a burst of joint drags costs at
most the call that is running plus the newest one, however many requests the page sent.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from glocal_cli.serve.engine import SupersededError

__all__ = ["ModelRunner"]

T = TypeVar("T")


class ModelRunner:
    """One model thread with per-channel superseding (see the module docstring)."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="glocal-model")
        self._tickets = itertools.count(1)
        self._latest: dict[str, int] = {}
        self._lock = threading.Lock()
        self.queued = 0
        """Calls submitted and not finished (including the running one)."""
        self.superseded = 0
        """Calls dropped or discarded because a newer one arrived on their channel."""

    def _is_latest(self, channel: str | None, ticket: int) -> bool:
        if channel is None:
            return True
        with self._lock:
            return self._latest.get(channel) == ticket

    async def run(self, fn: Callable[..., T], *args: Any, channel: str | None = None, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` in the model thread and return its result.

        With a ``channel``, raises :class:`SupersededError` when a newer call on the same channel
        arrived before this one finished.
        """
        ticket = next(self._tickets)
        if channel is not None:
            with self._lock:
                self._latest[channel] = ticket

        def job() -> T:
            if not self._is_latest(channel, ticket):
                raise SupersededError(f"request on channel {channel!r} superseded by a newer one before it ran")
            return fn(*args, **kwargs)

        self.queued += 1
        try:
            result = await asyncio.get_running_loop().run_in_executor(self._executor, job)
        except SupersededError:
            self.superseded += 1
            raise
        finally:
            self.queued -= 1
            current = self._finish(channel, ticket)
        if not current:
            self.superseded += 1
            raise SupersededError(f"request on channel {channel!r} superseded by a newer one while it ran")
        return result

    def _finish(self, channel: str | None, ticket: int) -> bool:
        """Whether ``ticket`` is still the newest call of ``channel`` (then the channel is forgotten)."""
        if channel is None:
            return True
        with self._lock:
            if self._latest.get(channel) == ticket:
                del self._latest[channel]
                return True
            return False

    def shutdown(self) -> None:
        """Stop the thread after the running call (queued calls are cancelled)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
