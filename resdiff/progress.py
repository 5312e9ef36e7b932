"""Progress bars on stderr, shown only on a terminal and never with ``--quiet``."""
import contextlib
import sys

_quiet = False


def set_quiet(flag):
    global _quiet
    _quiet = bool(flag)


class _NullBar:
    def update(self, n):
        pass


@contextlib.contextmanager
def progress(total, label):
    """A bar over ``total`` units of work; ``bar.update(n)`` after each chunk."""
    if _quiet or not sys.stderr.isatty() or total <= 0:
        yield _NullBar()
        return
    import click
    with click.progressbar(length=total, label=label, file=sys.stderr, show_eta=True,
                           show_percent=True, width=30) as bar:
        yield bar


def warn(message):
    """A warning line on stderr (always shown: warnings are results)."""
    print(f"resdiff: warning: {message}", file=sys.stderr)


def info(message):
    if not _quiet:
        print(message, file=sys.stderr)
