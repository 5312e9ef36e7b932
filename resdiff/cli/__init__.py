"""The ``resdiff`` command line: a thin click layer over :mod:`resdiff.experiments`.

Subcommands live in their own modules and are imported only when used, so
``resdiff --help`` stays fast (no numba, pandas or matplotlib at start-up).
Every failure the user can fix is one line on stderr and exit code 2; an interrupt
(Ctrl-C, SIGTERM) is one line and exit code 130 (SIGINT) or 143 (SIGTERM), and leaves
no output file.
"""

import importlib
import os
import sys

import click

from .. import __version__

# name -> "module:attribute"; one line per subcommand
COMMANDS = {
    "kde": "resdiff.cli.kde:kde",
    "fig": "resdiff.cli.fig:fig",
    "samples": "resdiff.cli.samples:samples",
    "correlation": "resdiff.cli.samples:correlation",
    "eoc": "resdiff.cli.eoc:eoc",
    "ntk-convergence": "resdiff.cli.ntk:ntk_convergence",
    "jacobian": "resdiff.cli.jacobian:jacobian",
    "explosion": "resdiff.cli.jacobian:explosion",
    "mnist-kernel": "resdiff.cli.mnist:mnist_kernel",
    "mnist-train": "resdiff.cli.train:mnist_train",
    "verify": "resdiff.cli.verify:verify",
    "report": "resdiff.cli.report:report",
    "plot": "resdiff.cli.report:plot",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def resolve_command(self, ctx, args):
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as exc:  # suggest the nearest names
            raise click.exceptions.NoSuchCommand(
                exc.command_name, possibilities=COMMANDS, ctx=ctx
            ) from None


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="resdiff")
def cli():
    """Regenerate the figures of "Doubly infinite residual networks: a diffusion
    process approach" (Peluchetti & Favaro).

    Each subcommand writes a tidy CSV (--out) and a JSON sidecar PATH.json recording
    every parameter, the seed, the version, the git commit, the thread count and the
    wall time. `resdiff fig N` runs what figure N needs and draws it.
    """


def _error(message):
    click.echo(f"resdiff: error: {message}", err=True)


def _exit_now(code):
    """Exit at once after an interrupt: every temporary file is already removed (the
    exception unwound through the writers), and the interpreter's teardown (Numba's
    thread pools, module finalisers) took about a second more."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def check_environment():
    """Refuse settings Numba would reject with a traceback when it first starts its
    threads (``NUMBA_NUM_THREADS=0``)."""
    from ..errors import UserError

    value = os.environ.get("NUMBA_NUM_THREADS", "").strip()
    if value and not (value.isdigit() and int(value) >= 1):
        raise UserError(
            f"NUMBA_NUM_THREADS={value}: the kernels' thread count must be a "
            "whole number of at least 1 (unset it to use every core)"
        )


def main(argv=None):
    """Console entry point: click's own errors are reduced to one line."""
    from .. import interrupt
    from ..errors import UserError

    # the command line only writes files: no window, whatever the user's backend
    os.environ["MPLBACKEND"] = "Agg"
    interrupt.install()
    try:
        check_environment()
        cli.main(args=argv, prog_name="resdiff", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:  # bare `resdiff`: show help
        click.echo(exc.ctx.get_help())
        sys.exit(0)
    except click.UsageError as exc:
        _error(exc.format_message().replace("\n", " "))
        sys.exit(2)
    except click.ClickException as exc:  # e.g. a file error from click itself
        _error(exc.format_message().replace("\n", " "))
        sys.exit(2)
    except UserError as exc:
        _error(str(exc).replace("\n", " "))
        sys.exit(2)
    except (KeyboardInterrupt, click.exceptions.Abort):
        _error("interrupted; no output was written for the unfinished step")
        _exit_now(130)
    except interrupt.Terminated:
        _error("terminated; no output was written for the unfinished step")
        _exit_now(143)
    except BrokenPipeError:  # e.g. `resdiff eoc | head`
        sys.exit(0)
    sys.exit(0)
