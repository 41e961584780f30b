"""``faceprior`` command line: one sub-command per module in ``faceprior.commands``.

Each command module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``; command modules import heavy libraries (torch, cv2) inside ``run`` so
that ``faceprior --help`` stays instant.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import traceback
import warnings

COMMANDS = (
    "restore",
    "models",
    "degrade",
    "evaluate",
    "train",
    "benchmark",
    "export",
    "serve",
    "colorize",
    "inpaint",
    "seg2face",
)

DEBUG_HELP = "show the Python traceback of an error (for bug reports)"


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="faceprior",
        description="Blind face restoration with GAN priors (GPEN, PSFR-GAN, Panini-Net, "
        "MMRB-GAN): restore, train, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"faceprior {__version__}")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"faceprior.commands.{name}")
        sub = subparsers.add_parser(
            name,
            help=module.HELP,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
        sub.set_defaults(_run=module.run, _parser=sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; the single place where faceprior's errors become messages.

    A :class:`~faceprior.errors.FacepriorError` prints ``faceprior <command>: <message>`` and
    exits with its code (2); any other exception is a bug and keeps its traceback. Ctrl-C and
    SIGTERM exit with 128 + the signal number.
    """
    from .errors import ArgumentError, FacepriorError

    args = build_parser().parse_args(argv)
    prefix = f"faceprior {args.command}"
    try:
        with _quiet_third_party_warnings():
            code = int(args._run(args) or 0)
        sys.stdout.flush()  # a closed pipe must fail here, not in the interpreter's exit
        return code
    except FacepriorError as error:
        if args.debug:
            traceback.print_exc()
        message = str(error)
        if isinstance(error, ArgumentError):
            message = f"{_flag(args._parser, error.parameter)} {error.detail}"
        print(f"{prefix}: {message}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt as interrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 128 + int(getattr(interrupt, "signal", signal.SIGINT))
    except BrokenPipeError:
        # The reader went away (``faceprior models --json | head``): not an error to report.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + int(signal.SIGPIPE)


def _flag(parser: argparse.ArgumentParser, parameter: str) -> str:
    """The command-line flag of a Python parameter (``upscale`` -> ``--upscale``)."""
    for action in parser._actions:
        if action.dest == parameter and action.option_strings and action.help != argparse.SUPPRESS:
            return "/".join(action.option_strings)
        if action.dest == parameter and not action.option_strings:
            return action.metavar or parameter.upper()
    return parameter


@contextlib.contextmanager
def _quiet_third_party_warnings():
    """Warnings from libraries that faceprior has already turned into per-file notes or
    errors (Pillow, numpy casts) are not printed a second time; OpenCV logs errors only;
    any other warning is printed once per run (see :func:`_show_each_warning_once`)."""
    with warnings.catch_warnings():
        for module in ("PIL", "numpy"):
            warnings.filterwarnings("ignore", module=module)
        warnings.filterwarnings("ignore", category=RuntimeWarning, message="invalid value")
        warnings.showwarning = _show_each_warning_once(warnings.showwarning)
        import cv2

        logging = cv2.utils.logging
        level = logging.getLogLevel()
        logging.setLogLevel(logging.LOG_LEVEL_ERROR)  # no "[ WARN:0@...]" lines
        try:
            yield
        finally:
            logging.setLogLevel(level)


def _show_each_warning_once(show):
    """``warnings.showwarning`` that prints a given warning (category, text, place) once.

    Python's own "once per place" memory is wiped whenever the warning filters change, and
    faceprior changes them for every image it decodes (``catch_warnings(record=True)`` turns
    decoder warnings into per-file notes). A warning raised on every batch, such as those of
    a ``torch.compile``-d model, was therefore printed again for each image.
    """
    shown: set[tuple] = set()

    def show_once(message, category, filename, lineno, file=None, line=None) -> None:
        key = (category, str(message), filename, lineno)
        if key not in shown:
            shown.add(key)
            show(message, category, filename, lineno, file, line)

    return show_once


if __name__ == "__main__":
    sys.exit(main())
