"""The bundle commands through ``lockresolve.cli.main``: imgpkg's stdout, messages, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from lockresolve import cli as cli_module
from tests.support.bundle_cases import BundleCase, load_cases
from tests.support.registry import Registry

CASES = load_cases()


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = 0
    try:
        cli_module.main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def push_argv(case: BundleCase, root: Path, registry: Registry) -> list[str]:
    args = [a.replace("{root}", str(root)) for a in case.push_args]
    return ["push", case.mode, f"{registry.host}/conf/{case.name}", *args]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_push_prints_imgpkgs_stdout(
    case: BundleCase, registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "tree"
    case.materialise(root)
    code, out, err = run(push_argv(case, root, registry), capsys)
    assert (code, err) == (0, "")
    assert out == case.expected["push_stdout"].replace("${REGISTRY}", registry.host)


def test_push_pull_tag_round_trip(
    registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = next(c for c in CASES if c.mode == "-b")
    root = tmp_path / "tree"
    case.materialise(root)
    lock = tmp_path / "lock.yml"
    ref = f"{registry.host}/cli/round:1.0"
    code, out, _ = run(["push", "-b", ref, "-f", str(root), "--lock-output", str(lock)], capsys)
    assert code == 0
    pushed = out.splitlines()[-2].removeprefix("Pushed '").removesuffix("'")
    assert lock.read_text().splitlines()[3] == f"  image: {pushed}"

    code, out, _ = run(["pull", "--lock", str(lock), "-o", str(tmp_path / "out")], capsys)
    assert code == 0
    assert out.startswith(f"Pulling bundle '{pushed}'\n  Extracting layer 'sha256:")
    assert out.endswith("\n\nSucceeded\n")
    assert (tmp_path / "out" / ".imgpkg" / "bundle.yml").is_file()

    code, out, _ = run(["tag", "resolve", "-i", ref], capsys)
    assert (code, out) == (0, f"{pushed}\nSucceeded\n")

    code, out, _ = run(["tag", "ls", "-i", f"{registry.host}/cli/round"], capsys)
    assert (code, out) == (0, "Tags\n\nName  \n1.0  \n\n1 tags\n\nSucceeded\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["push", "-f", "x"], "Expected either image or bundle"),
        (["push", "-b", "r/a", "-i", "r/b", "-f", "x"], "Expected only one of image or bundle"),
        (["pull", "-o", "out"], "Expected either image or bundle reference"),
        (
            ["pull", "-b", "r/a", "-i", "r/b", "-o", "out"],
            "Expected only one of image, bundle, or lock",
        ),
        (["pull", "-b", "r/a", "-o", "."], "Disallowed output directory"),
        (["pull", "-i", "r/a", "-r", "-o", "out"], "Cannot use --recursive (-r) flag"),
        (["push", "-i", "r/a", "-f", "x", "-l", "nokey"], "must be formatted as key=value"),
    ],
)
def test_usage_errors_exit_2_with_imgpkgs_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(argv, capsys)
    assert code == 2
    assert message in err
    assert out == ""


def test_pull_refusal_exits_1_and_says_force(
    registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.yml").write_text("a: 1\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep").write_text("")
    assert (
        run(["push", "-i", f"{registry.host}/cli/img", "-f", str(tmp_path / "in")], capsys)[0] == 0
    )
    code, _, err = run(
        ["pull", "-i", f"{registry.host}/cli/img", "-o", str(tmp_path / "out")], capsys
    )
    assert code == 1
    assert "--force" in err
    code, _, _ = run(
        ["pull", "-i", f"{registry.host}/cli/img", "-o", str(tmp_path / "out"), "--force"], capsys
    )
    assert code == 0
    assert (tmp_path / "out" / "a.yml").is_file()


def test_progress_bar_only_on_a_terminal() -> None:
    import io

    from lockresolve.bundle.progress import Progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    piped, tty = io.StringIO(), Tty()
    for stream in (piped, tty):
        with Progress("push", stream=stream) as bar:
            bar.expect(2048)
            bar.advance(1024)
    assert piped.getvalue() == ""
    assert "push [" in tty.getvalue() and "/2.0 KiB" in tty.getvalue()
    assert tty.getvalue().endswith("\r\x1b[2K")  # the line is cleared at the end
