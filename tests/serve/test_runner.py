"""The model runner: one thread off the event loop; a newer request on a channel supersedes older ones."""

from __future__ import annotations

import asyncio
import threading

import pytest

from glocal_cli.serve.engine import SupersededError
from glocal_cli.serve.runner import ModelRunner


def test_newer_request_supersedes_running_and_queued_ones():
    ran: list[str] = []
    gate = threading.Event()

    def job(name: str) -> str:
        if name == "first":
            assert gate.wait(5)
        ran.append(name)
        return name

    async def scenario():
        runner = ModelRunner()
        first = asyncio.create_task(runner.run(job, "first", channel="tab:transfer"))
        await asyncio.sleep(0.05)  # "first" is running and blocked
        second = asyncio.create_task(runner.run(job, "second", channel="tab:transfer"))
        other = asyncio.create_task(runner.run(job, "other", channel="tab2:transfer"))
        await asyncio.sleep(0.01)
        third = asyncio.create_task(runner.run(job, "third", channel="tab:transfer"))
        await asyncio.sleep(0.01)
        gate.set()
        results = await asyncio.gather(first, second, other, third, return_exceptions=True)
        runner.shutdown()
        return results, runner

    (first, second, other, third), runner = asyncio.run(scenario())
    assert isinstance(first, SupersededError) and "while it ran" in str(first)
    assert isinstance(second, SupersededError) and "before it ran" in str(second)
    assert other == "other" and third == "third"
    assert ran == ["first", "other", "third"]  # "second" never ran
    assert runner.superseded == 2 and runner.queued == 0


def test_calls_without_channel_all_run_and_errors_do_not_stop_the_thread():
    def boom() -> None:
        raise RuntimeError("model failed")

    async def scenario():
        runner = ModelRunner()
        with pytest.raises(RuntimeError, match="model failed"):
            await runner.run(boom)
        out = await asyncio.gather(*(runner.run(lambda i=i: i * i) for i in range(5)))
        names = await runner.run(lambda: threading.current_thread().name)
        runner.shutdown()
        return out, names

    out, name = asyncio.run(scenario())
    assert out == [0, 1, 4, 9, 16]
    assert name.startswith("glocal-model")  # the work ran off the event loop's thread
