"""The stop signals: a request at the next step boundary, and an earlier handler kept."""

from __future__ import annotations

import os
import signal

import pytest

from moeheads.errors import InterruptedRunError
from moeheads.train.interrupt import GracefulInterrupt


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM", "SIGUSR1"])
def test_a_stop_signal_becomes_a_request(name: str) -> None:
    with GracefulInterrupt() as interrupt:
        os.kill(os.getpid(), getattr(signal, name))
        assert interrupt.requested and interrupt.signal_number == getattr(signal, name)
        os.kill(os.getpid(), signal.SIGTERM)  # a repeat changes nothing
        assert interrupt.signal_number == getattr(signal, name)


def test_a_second_ctrl_c_stops_at_once() -> None:
    with GracefulInterrupt(), pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)


def test_an_earlier_handler_gets_the_signal_after_the_checkpoint() -> None:
    received: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: received.append(signum))
    try:
        with GracefulInterrupt() as interrupt:
            os.kill(os.getpid(), signal.SIGUSR1)
            assert received == []  # not while the step finishes
            interrupt.hand_over()
        assert received == [signal.SIGUSR1]
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_exit_status_is_128_plus_the_signal() -> None:
    assert InterruptedRunError("x").exit_code == 130
    assert InterruptedRunError("x", signal.SIGTERM).exit_code == 128 + signal.SIGTERM
