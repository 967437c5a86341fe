"""The command line: parse flags, call one library function, map errors to exit codes.

Heavy modules (httpx, ruamel.yaml, the resolver) are imported inside the
commands so that ``lockresolve --version`` and ``--help`` start fast.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from lockresolve._version import __version__
from lockresolve.cli_options import (
    bool_option,
    registry_options,
    settings_from_kwargs,
    split_image_options,
    split_kinds_from_kwargs,
)

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Interrupted(BaseException):
    """Ctrl-C, carried past click (which answers KeyboardInterrupt with a blank line)."""


class _DefaultGroup(click.Group):
    """``lockresolve -f x`` means ``lockresolve resolve -f x``, as kbld's root command."""

    default_command = "resolve"

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in BUNDLE_COMMANDS:
            _register_bundle_commands()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        _register_bundle_commands()
        return super().list_commands(ctx)

    def _names(self) -> set[str]:
        return set(self.commands) | set(BUNDLE_COMMANDS)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise _Interrupted from None

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        names = self._names()
        if args and args[0] not in names and not args[0].startswith("-"):
            raise click.UsageError(self._no_such_command(args[0]), ctx)
        if args and args[0] not in names and args[0] not in ("--help", "-h", "--version"):
            args = [self.default_command, *args]
        elif not args:
            args = ["--help"]
        return super().parse_args(ctx, args)

    def _no_such_command(self, name: str) -> str:
        """click's wording for an unknown command, with a suggestion as click gives
        for a mistyped option (the default command takes no arguments, so a word
        first is never meant for it)."""
        import difflib

        close = difflib.get_close_matches(name, sorted(self._names()), n=1)
        if close:
            return f"No such command {name!r}. Did you mean {close[0]!r}?"
        commands = ", ".join(sorted(self._names()))
        return (
            f"No such command {name!r} (commands: {commands}; "
            "without one, lockresolve resolves: lockresolve -f PATH)."
        )


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--version``: the version and which Go gzip encoder pushes use (C or pure Python)."""
    if not value or ctx.resilient_parsing:
        return
    from lockresolve.goflate import ENCODER

    click.echo(f"lockresolve, version {__version__} (gzip encoder: {ENCODER})")
    ctx.exit()


@click.group(cls=_DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version (and the gzip encoder in use) and exit.",
)
def cli() -> None:
    """Resolve image references to digests and write kbld/imgpkg lock files.

    Without a command, lockresolve resolves, like kbld:
    lockresolve -f packages/ --imgpkg-lock-output .imgpkg/images.yml
    """


@cli.command("resolve")
@click.option(
    "-f",
    "--file",
    "files",
    multiple=True,
    required=True,
    help="File, directory (recursive; .yml/.yaml/.json), '-' for stdin, or http(s) URL. "
    "Repeatable; commas split.",
)
@click.option(
    "--imgpkg-lock-output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write an imgpkg ImagesLock (.imgpkg/images.yml).",
)
@click.option(
    "--lock-output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a kbld Config lock with preresolved overrides.",
)
@bool_option("--images-annotation", True, "Annotate resources with kbld.k14s.io/images.")
@bool_option("--origins-annotation", True, "Write kbld.carvel.dev/origins in the imgpkg lock.")
@click.option(
    "--image-map-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON map of image -> new image, applied as overrides.",
)
@click.option("--platform", help="Pick this platform (os/arch[/variant]) from image indexes.")
@bool_option("--unresolved-inspect", False, "Accepted for kbld compatibility (no effect).")
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 if a lock file would change.",
)
@click.option(
    "--update",
    is_flag=True,
    help="Re-resolve every reference, ignoring the digests in the existing lock file.",
)
@click.option(
    "--update-ref",
    "update_refs",
    multiple=True,
    metavar="REF",
    help="Re-resolve this reference (as written) only; repeatable.",
)
@click.option(
    "--fail-on-change",
    is_flag=True,
    help="Exit 1 when a lock file was created or changed (for pre-commit hooks).",
)
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="Print no documents and no 'resolve | final' lines; say what changed in the locks.",
)
@split_image_options
@click.option(
    "--keep-tag",
    is_flag=True,
    help="Write repo:tag@sha256:... in the documents instead of repo@sha256:... (locks unchanged).",
)
@click.option(
    "--offline",
    is_flag=True,
    help="Send no registry request: fail, listing them, for references not pinned by a "
    "digest, a lock or a preresolved override.",
)
@click.option(
    "--exclude",
    "excludes",
    multiple=True,
    metavar="PATTERN",
    help="Leave references matching this shell-style pattern (as written or normalised) "
    "as they are, out of the locks; repeatable.",
)
@click.option(
    "--verify-digests",
    is_flag=True,
    help="Also check with one HEAD each that every digest written or kept exists.",
)
@registry_options(concurrency=32)  # RESOLVE_CONCURRENCY
def resolve_command(**kwargs: Any) -> None:
    """Resolve image references in YAML to digests (kbld-compatible)."""
    from lockresolve.resolve.command import run_resolve_command

    settings = settings_from_kwargs(kwargs)
    split_kinds = split_kinds_from_kwargs(kwargs)
    code = run_resolve_command(settings=settings, split_kinds=split_kinds, **kwargs)
    if code:
        raise SystemExit(code)


@cli.command("outdated")
@click.option(
    "-f",
    "--file",
    "files",
    multiple=True,
    required=True,
    help="File, directory, '-' or URL, as for resolve. Repeatable; commas split.",
)
@click.option(
    "--imgpkg-lock-output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The ImagesLock whose digests are the pins (read only).",
)
@click.option(
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table of what is outdated, or JSON of every reference.",
)
@click.option("--exit-code", is_flag=True, help="Exit 1 when a tag moved or a newer one exists.")
@split_image_options
@registry_options(concurrency=32)  # RESOLVE_CONCURRENCY
def outdated_command(**kwargs: Any) -> None:
    """Report pinned tags that moved, and newer version tags, per reference."""
    from lockresolve.resolve.outdatedview import run_outdated_command

    settings = settings_from_kwargs(kwargs)
    code = run_outdated_command(
        settings=settings, split_kinds=split_kinds_from_kwargs(kwargs), **kwargs
    )
    if code:
        raise SystemExit(code)


#: the bundle commands, defined in cli_bundle.py: imported only when one of them is
#: run or the commands are listed (--help), so that resolve does not pay for them
BUNDLE_COMMANDS = ("push", "pull", "copy", "tag", "describe")


def _register_bundle_commands() -> None:
    if "push" in cli.commands:
        return
    from lockresolve.cli_bundle import (
        copy_command,
        describe_command,
        pull_command,
        push_command,
        tag_group,
    )

    for command in (push_command, pull_command, copy_command, tag_group, describe_command):
        cli.add_command(command)


def _reported(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """What to report for an error group from concurrent tasks: Ctrl-C first, else the
    first of lockresolve's own errors; the group itself when it holds neither."""
    from lockresolve.errors import LockresolveError

    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop(0)
        if isinstance(exc, BaseExceptionGroup):
            pending[:0] = exc.exceptions
        else:
            leaves.append(exc)
    for kind in (KeyboardInterrupt, LockresolveError):
        for leaf in leaves:
            if isinstance(leaf, kind):
                return leaf
    return group


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the CLI and map every error to one line and an exit code."""
    from lockresolve.errors import LockresolveError, UsageError
    from lockresolve.interrupts import is_committed, reset

    reset()
    try:
        try:
            cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
        except BaseExceptionGroup as group:
            leaf = _reported(group)
            if leaf is group:
                raise
            raise leaf from None
        except _Interrupted:
            raise KeyboardInterrupt from None
        if argv is None:
            # Done: a Ctrl-C while the interpreter shuts down changes nothing.
            with contextlib.suppress(ValueError):  # not the main thread
                signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (KeyboardInterrupt, click.exceptions.Abort):
        if is_committed():
            sys.exit(0)  # the result is in place: the interruption undid nothing
        click.echo("lockresolve: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE if isinstance(exc, click.UsageError) else EXIT_FAILURE)
    except UsageError as exc:
        click.echo(f"lockresolve: error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except LockresolveError as exc:
        click.echo(f"lockresolve: error: {exc}", err=True)
        sys.exit(EXIT_FAILURE)
    except BrokenPipeError:
        sys.exit(EXIT_FAILURE)
    except Exception as exc:  # a bug: still one line, unless asked for the traceback
        if os.environ.get("LOCKRESOLVE_TRACEBACK"):
            raise
        click.echo(
            f"lockresolve: internal error: {type(exc).__name__}: {exc} "
            "(set LOCKRESOLVE_TRACEBACK=1 for details, and please report it)",
            err=True,
        )
        sys.exit(EXIT_FAILURE)


if __name__ == "__main__":  # pragma: no cover
    main()
