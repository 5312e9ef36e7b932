"""Ctrl-C and SIGTERM: stop promptly, between two chunks of compiled work.

A signal handler that raises while a Numba kernel runs leaves the exception set when
the kernel returns (``SystemError: CPUDispatcher(...) returned a result with an
exception set``). Inside :func:`shielded` the handler only records the signal, and the
matching exception is raised as the block ends; elsewhere it raises at once.

A kernel's first call in a block compiles it (or loads it from Numba's cache), which is
Python code holding Numba's compiler lock and takes up to a minute: no kernel runs
then, so the handler raises at once there too, and a cold cache stops as promptly as a
warm one. Only inside LLVM's object-cache callbacks (Python called from C, where an
exception would be swallowed and the signal lost) it sends the signal again 20 ms later.
"""

import contextlib
import os
import signal
import sys
import threading


class Terminated(BaseException):
    """SIGTERM was received (exit code 143). Like KeyboardInterrupt, not an Exception:
    no ``except Exception`` (ours, Numba's type inference) mistakes it for a failure."""


_shield = 0
_pending = []


def _exception(signum):
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated()


def _compiling():
    """True while this thread compiles or loads a Numba kernel (it holds the compiler
    lock; no compiled kernel of this thread is running)."""
    lock = sys.modules.get("numba.core.compiler_lock")
    return lock is not None and lock.global_compiler_lock.is_locked()


# llvmlite's ctypes callbacks: an exception raised in them is printed and dropped
_CALLBACKS = frozenset({"_raw_object_cache_notify", "_raw_object_cache_getbuffer"})


def _in_callback(frame):
    while frame is not None:
        if frame.f_code.co_name in _CALLBACKS:
            return True
        frame = frame.f_back
    return False


def _handler(signum, frame):
    if _in_callback(frame):
        retry = threading.Timer(0.02, os.kill, (os.getpid(), signum))
        retry.daemon = True
        retry.start()
        return
    if _shield and not _compiling():
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
