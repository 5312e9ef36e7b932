"""Progress bars on stderr, shown only on a terminal and never with ``--quiet``."""

import contextlib
import sys

_quiet = False


def set_quiet(flag):
    global _quiet
    _quiet = bool(flag)


def is_quiet():
    return _quiet


class _NullBar:
    def update(self, n):
        pass

    def set_postfix(self, text):
        pass


class _Bar:
    """click's bar plus a status text after it (``set_postfix``), shown through click's
    documented ``item_show_func`` / ``update(n, current_item)``."""

    def __init__(self, bar):
        self._bar, self._postfix = bar, None

    def update(self, n):
        self._bar.update(n, self._postfix)

    def set_postfix(self, text):
        self._postfix = text
        self._bar.update(0, text)


@contextlib.contextmanager
def progress(total, label):
    """A bar over ``total`` units of work; ``bar.update(n)`` after each chunk and
    ``bar.set_postfix(text)`` for a status shown after the ETA."""
    if _quiet or not sys.stderr.isatty() or total <= 0:
        yield _NullBar()
        return
    import click

    with click.progressbar(
        length=total,
        label=label,
        file=sys.stderr,
        show_eta=True,
        show_percent=True,
        width=30,
        item_show_func=lambda text: text,
    ) as bar:
        yield _Bar(bar)


def warn(message):
    """A warning line on stderr (always shown: warnings are results)."""
    print(f"resdiff: warning: {message}", file=sys.stderr)


def info(message):
    if not _quiet:
        print(message, file=sys.stderr)
