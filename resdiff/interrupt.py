"""Ctrl-C and SIGTERM: stop promptly, between two chunks of compiled work.

A signal handler that raises while a Numba kernel runs leaves the exception set when
the kernel returns (``SystemError: CPUDispatcher(...) returned a result with an
exception set``). Inside :func:`shielded` the handler only records the signal, and the
matching exception is raised as the block ends; elsewhere it raises at once.
"""
import contextlib
import signal


class Terminated(Exception):
    """SIGTERM was received (exit code 143)."""


_shield = 0
_pending = []


def _exception(signum):
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated()


def _handler(signum, frame):
    if _shield:
        _pending.append(signum)
        return
    raise _exception(signum)


def install():
    """Route SIGINT and SIGTERM through :func:`_handler` (call once, from the CLI).

    SIGINT keeps an inherited SIG_IGN (a background job started without job control)."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)


def check():
    """Raise the exception of a signal recorded while shielded, if any."""
    if _pending and not _shield:
        signum = _pending[0]
        _pending.clear()
        raise _exception(signum)


@contextlib.contextmanager
def shielded():
    """Run compiled code: a signal during the block is raised when it ends."""
    global _shield
    _shield += 1
    try:
        yield
    finally:
        _shield -= 1
    check()
