"""The command line itself: version, help, verbose logging, exit codes, one-line errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from lockresolve import __version__
from tests.support.cli import run_cli as run
from tests.support.conformance import get_case, seed_case
from tests.support.registry import Registry

COMMANDS = [
    [],
    ["resolve"],
    ["push"],
    ["pull"],
    ["copy"],
    ["tag"],
    ["tag", "ls"],
    ["tag", "resolve"],
]


def test_version(capfd: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--version"], capfd)
    assert code == 0
    from lockresolve.goflate import ENCODER

    assert out.strip() == f"lockresolve, version {__version__} (gzip encoder: {ENCODER})"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_help_on_every_command(command: list[str], capfd: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([*command, "--help"], capfd)
    assert code == 0
    assert out.startswith("Usage:")


def test_bundle_commands_are_loaded_only_when_needed() -> None:
    # A resolve never imports cli_bundle (start-up time); the names cli.py knows without
    # importing it are exactly the commands cli_bundle defines, and all are listed.
    code = (
        "import sys\n"
        "from lockresolve import cli\n"
        "assert 'lockresolve.cli_bundle' not in sys.modules\n"
        "cli.main(['resolve', '--help'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    code = (
        "import click\n"
        "from lockresolve import cli\n"
        "before = set(cli.cli.commands)\n"
        "listed = cli.cli.list_commands(click.Context(cli.cli))\n"
        "added = set(cli.cli.commands) - before\n"
        "print(sorted(added), sorted(cli.BUNDLE_COMMANDS), listed)\n"
        "assert added == set(cli.BUNDLE_COMMANDS) and set(listed) == before | added\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_concurrency_defaults_follow_the_registry_core() -> None:
    """The CLI cannot import the constants (start-up), so its defaults are checked here."""
    import click

    from lockresolve.cli import cli
    from lockresolve.registry.transport import DEFAULT_CONCURRENCY, RESOLVE_CONCURRENCY

    def default(command: click.Command) -> object:
        return next(p.default for p in command.params if p.name == "concurrency")

    assert isinstance(cli, click.Group)
    ctx = click.Context(cli)
    names = cli.list_commands(ctx)
    assert {"resolve", "push", "pull", "copy", "tag"} <= set(names)
    for name in names:
        command = cli.get_command(ctx, name)
        assert command is not None
        if any(p.name == "concurrency" for p in command.params):
            # outdated sends the requests resolve does (HEADs, tag listings)
            resolving = name in ("resolve", "outdated")
            expected = RESOLVE_CONCURRENCY if resolving else DEFAULT_CONCURRENCY
            assert default(command) == expected, name


def test_console_script_is_installed() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "lockresolve.cli", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and __version__ in out.stdout


def test_both_lock_flags_is_a_usage_error(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "d.yml").write_text(
        "kind: Pod\nspec: {containers: [{image: nginx@sha256:" + "a" * 64 + "}]}\n"
    )
    code, out, err = run(
        ["-f", str(tmp_path), "--imgpkg-lock-output", "a.yml", "--lock-output", "b.yml"], capfd
    )
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1


def test_unknown_flag_is_a_usage_error(capfd: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["-f", "x.yml", "--no-such-flag"], capfd)
    assert code == 2
    assert "no-such-flag" in err


def test_missing_file_is_one_line_naming_it(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.yml"
    code, out, err = run(["-f", str(missing)], capfd)
    assert code == 1
    assert out == ""
    assert str(missing) in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_verbose_logs_every_request_and_a_count(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    case = get_case("resolve", "r02")
    seed_case(registry, case)
    case.copy_input(tmp_path, registry.host)
    code, _, err = run(["-v", "-f", str(tmp_path)], capfd)
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("lockresolve: HEAD ")]
    assert len(lines) == 3
    for line in lines:
        assert re.fullmatch(
            rf"lockresolve: HEAD http://{re.escape(registry.host)}/v2/\S+ 200 [0-9.]+ms", line
        )
    assert "lockresolve: 3 HTTP requests (HEAD 3) to 1 host(s), 0 retried" in err


def test_a_bad_file_after_a_good_one_is_one_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "a.yml"
    good.write_text("apiVersion: v1\nkind: Pod\nspec:\n  image: 127.0.0.1:9/never/asked:1\n")
    bad = tmp_path / "b.yml"
    bad.write_text("apiVersion: v1\nkind: Pod\nspec: [\n")
    lock = tmp_path / "images.yml"
    code, out, err = run(
        ["-f", str(good), "-f", str(bad), "--imgpkg-lock-output", str(lock)], capfd
    )
    assert code == 1
    assert out == ""
    assert err.startswith(f"lockresolve: error: {bad}:")
    assert len(err.strip().splitlines()) == 1
    assert not lock.exists()


def test_an_image_kbld_would_build_is_refused_by_name(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "kbld.yml").write_text(
        "apiVersion: kbld.k14s.io/v1alpha1\nkind: Config\nsources:\n- image: simple-app\n  path: .\n"
    )
    (tmp_path / "app.yml").write_text("kind: Pod\nspec:\n  containers:\n  - image: simple-app\n")
    code, out, err = run(["-f", str(tmp_path)], capfd)
    assert code == 1
    assert out == ""
    assert "Resolving image 'simple-app'" in err
    assert "does not build images" in err


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [
        (["resolv", "-f", "packages/"], "resolve"),
        (["pul", "-i", "x", "-o", "out"], "pull"),
        (["tga", "ls", "-i", "x"], "tag"),
        (["cpy", "-b", "x", "--to-tar", "t.tar"], "copy"),
    ],
)
def test_a_mistyped_command_suggests_the_command(
    argv: list[str], suggestion: str, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Issue 15: not "Got unexpected extra argument (resolv)" from the default command."""
    code, out, err = run(argv, capfd)
    assert code == 2
    assert out == ""
    assert f"Error: No such command '{argv[0]}'. Did you mean '{suggestion}'?" in err
    assert "unexpected extra argument" not in err
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_word_names_the_commands_and_the_default(
    capfd: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(["deploy", "-f", "x.yml"], capfd)
    assert code == 2
    assert out == ""
    assert (
        "Error: No such command 'deploy' (commands: copy, describe, outdated, pull, push, resolve, tag; "
        "without one, lockresolve resolves: lockresolve -f PATH)." in err
    )


def test_options_first_still_mean_resolve(capfd: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["--fil", "x.yml"], capfd)
    assert code == 2
    assert "No such option '--fil'. Did you mean '--file'?" in err
