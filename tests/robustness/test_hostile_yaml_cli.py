"""Hostile YAML end to end through the CLI: every bad input is one stderr line naming the file
(and line), exit 1, quickly, with no traceback, nothing on stdout and no lock written.
References that are templates, upper-case or otherwise invalid fail the run as kbld's do,
each named with its file and line and the way to exclude it on purpose."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.resolve.test_hostile import billion_laughs, merge_bomb
from tests.robustness.helpers import EXISTING_LOCK, run_cli, tally

BOUND = 5.0  # seconds for any one of these runs

#: name -> (bytes, the line the message must name, or None when only the file is named)
HOSTILE: dict[str, tuple[bytes, int | None]] = {
    "malformed.yml": (b"kind: Pod\nspec: [1, 2\nmetadata: x\n", 3),
    "tab-indent.yml": (b"a:\n\tb: c\n", 2),
    "latin1.yml": (b"kind: Pod\nname: caf\xe9\n", 2),
    "utf16.yml": ("kind: Pod\n".encode("utf-16"), 1),
    "control-char.yml": (b"a: b\nc: \x07\n", 2),
    "binary.yml": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", 3),
    "elf.yaml": (b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4, 1),
    "billion-laughs.yml": (billion_laughs().encode(), None),
    "merge-bomb.yml": (merge_bomb().encode(), None),
    "deep-flow.yml": (b"a: " + b"[" * 20_000 + b"]" * 20_000 + b"\n", 1),
    "deep-map.yml": (b"a: " + b"{x: " * 5_000 + b"1" + b"}" * 5_000 + b"\n", 1),
    # ruamel's scanner takes ~50 us per flow item: 10,000 items (a 30 kB line) keep it quick
    "long-line-unclosed.yml": (b"kind: Pod\nargs: [" + b"x, " * 10_000 + b"\n", 3),
    "long-key.yml": (b"kind: Pod\n" + b"k" * 600_000 + b"\n", 3),
    "undefined-alias.yml": (b"kind: Pod\nimage: *nope\n", 2),
    "scalar-document.yml": (b"just a string\n", 1),
    "bad-tag.yml": (b"replicas: !!int three\n", 1),
    "template-braces.yml": (b"kind: Secret\nstringData:\n  token: {{HF_TOKEN}}\n", 3),
}


def _run(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], *inputs: Path
) -> tuple[int, str, str, float, Path]:
    lock = tmp_path / "lock" / "images.yml"
    lock.parent.mkdir(exist_ok=True)
    lock.write_text(EXISTING_LOCK)
    args = [a for p in inputs for a in ("-f", str(p))]
    res = run_cli([*args, "--imgpkg-lock-output", str(lock)], capfd)
    return res.code, res.out, res.err, res.seconds, lock


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_yaml_is_one_line_naming_file_and_line(
    name: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    data, line = HOSTILE[name]
    path = tmp_path / "in" / name
    path.parent.mkdir()
    path.write_bytes(data)
    code, out, err, seconds, lock = _run(tmp_path, capfd, path)
    assert code == 1, err
    assert seconds < BOUND
    assert out == ""
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    where = f"{path}:{line}:" if line is not None else f"{path}:"
    assert lines[0].startswith(f"lockresolve: error: {where}"), err
    assert len(lines[0]) < 400
    assert lock.read_text() == EXISTING_LOCK
    tally("hostile YAML inputs refused (CLI)")


def test_one_bad_file_in_a_directory_is_named_and_nothing_is_written(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "in"
    d.mkdir()
    (d / "a-good.yml").write_text("kind: Pod\nimage: example.com/app@sha256:" + "a" * 64 + "\n")
    (d / "b-binary.yml").write_bytes(b"\x00\x01\x02 not yaml")
    (d / "c-good.yml").write_text("kind: Pod\n")
    code, out, err, _, lock = _run(tmp_path, capfd, d)
    assert code == 1 and out == ""
    assert err.startswith(f"lockresolve: error: {d / 'b-binary.yml'}:1:"), err
    assert lock.read_text() == EXISTING_LOCK
    tally("hostile YAML inputs refused (CLI)")


@pytest.mark.parametrize(
    "data",
    [b"", b"\n\n# only a comment\n", b"---\n---\n", b"\xef\xbb\xbf"],
    ids=["empty", "comment", "separators", "bom"],
)
def test_empty_inputs_are_fine(
    data: bytes, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "empty.yml"
    path.write_bytes(data)
    code, out, err, _, lock = _run(tmp_path, capfd, path)
    assert code == 0, err
    assert out == ""
    assert lock.read_text() == "---\napiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\n"
    tally("hostile YAML inputs accepted as empty (CLI)")


def test_a_very_long_valid_line_is_fine(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "long.yml"
    path.write_text("kind: ConfigMap\ndata:\n  blob: " + "x" * 600_000 + "\n")
    code, out, err, seconds, _ = _run(tmp_path, capfd, path)
    assert code == 0, err
    assert seconds < BOUND
    assert len(out) > 600_000
    tally("hostile YAML inputs accepted (CLI)")


# --- references that are not references ------------------------------------------------

DIGEST_REF = "example.com/app@sha256:" + "b" * 64

NOT_REFERENCES = {
    4: "{{ .Values.image }}",
    5: "$(params.image)",
    6: "${IMAGE}",
    7: "<IMAGE>",
    8: "Nginx:1.25",
    9: "registry.example/App:1",
    10: "example.com/app:1 extra",
    11: "example.com/app:" + "t" * 200,
    12: "example.com/app@sha256:123",
    13: "example.com:99999/app:1",
}


def _references_yaml() -> str:
    lines = ["kind: Pod", "spec:", "  containers:"]
    for value in NOT_REFERENCES.values():
        lines.append(f"  - image: {value!r}".replace("'", '"'))
    lines.append(f"  - image: {DIGEST_REF}")
    return "\n".join(lines) + "\n"


HINT = "(if this value is not an image on purpose, exclude it with a search rule whose updateStrategy is none)"


def test_template_and_invalid_references_fail_like_kbld_and_name_each(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "refs.yml"
    path.write_text(_references_yaml())
    code, out, err, seconds, lock = _run(tmp_path, capfd, path)
    assert code == 1
    assert out == ""
    assert seconds < BOUND
    assert lock.read_text() == EXISTING_LOCK
    lines = err.splitlines()
    assert (
        lines[0]
        == f"lockresolve: error: {len(NOT_REFERENCES)} image reference(s) failed to resolve:"
    )
    assert "Traceback" not in err
    for line_no, value in NOT_REFERENCES.items():
        (line,) = [x for x in lines if x.startswith(f"- Resolving image '{value}' ")]
        assert f"({path}:{line_no})" in line, line
        assert line.endswith(HINT), line
        tally("invalid or template references refused (CLI)")
    assert DIGEST_REF not in err


def test_a_lock_is_never_written_with_an_unpinned_reference(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Even a fresh lock path: a failing run writes nothing there."""
    path = tmp_path / "refs.yml"
    path.write_text(_references_yaml())
    lock = tmp_path / "new" / "images.yml"
    res = run_cli(["-f", str(path), "--imgpkg-lock-output", str(lock)], capfd)
    assert res.code == 1 and not lock.exists()
    res = run_cli(["-f", str(path), "--lock-output", str(lock)], capfd)
    assert res.code == 1 and not lock.exists()


def test_excluded_on_purpose_with_update_strategy_none(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    rules = ["apiVersion: kbld.k14s.io/v1alpha1", "kind: Config", "searchRules:"]
    for value in NOT_REFERENCES.values():
        rules += [
            "- keyMatcher: {name: image}",
            f"  valueMatcher: {{image: {value!r}}}".replace("'", '"'),
            "  updateStrategy: {none: {}}",
        ]
    path = tmp_path / "refs.yml"
    path.write_text(_references_yaml() + "---\n" + "\n".join(rules) + "\n")
    code, out, err, _, lock = _run(tmp_path, capfd, path)
    assert code == 0, err
    for value in NOT_REFERENCES.values():
        if value:
            assert value in out
    text = lock.read_text()
    assert f"image: {DIGEST_REF}" in text
    assert text.count("- annotations:") == 1
