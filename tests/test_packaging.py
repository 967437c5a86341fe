"""lockresolve built and installed as a Python tool, the way a user or a package index
sees it.

- ``python -m build`` (as a user runs it: an isolated build environment) makes an sdist,
  then a wheel *from that sdist*, so an sdist missing a file the build needs fails here.
- The sdist carries every file git has under ``lockresolve/`` (C sources and headers of
  an accelerator included), README, CHANGELOG and LICENSE.
- The wheel's metadata is what an index shows: version, licence, classifiers, keywords,
  project URLs, the runtime dependencies and nothing else; it ships ``py.typed``.
- The wheel installed into a fresh virtual environment, holding only the runtime
  dependencies, runs ``lockresolve --version`` and resolves kbld's recorded case r01
  against the real registry to kbld's lock, byte for byte.
- click's shell completion: the bash script is produced and, loaded into a real bash,
  completes commands and the default command's flags.
- ``pipx install .`` installs a working ``lockresolve``.

Everything builds from a copy of the package files (``tests/support/sourcetree.py``), so
uncommitted work is what is tested and nothing is written into the checkout. pip reads
the runtime dependencies from the package index configured on the machine.
"""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import importlib.util
import json
import os
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from lockresolve._version import __version__
from tests.support.conformance import get_case, seed_case
from tests.support.registry import Registry
from tests.support.sourcetree import REPO_ROOT, copy_package_tree, package_files

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
# Installed into every new virtual environment by ensurepip, not by lockresolve.
VENV_SEED = {"pip", "setuptools", "wheel"}


def run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command that must succeed (outside the checkout); its stdout."""
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        args,
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    return done.stdout


def headers(metadata: email.message.Message, name: str) -> list[str]:
    """Every value of a metadata field, which must be present."""
    values = metadata.get_all(name)
    assert values, f"no {name} in the wheel's METADATA"
    return [str(v) for v in values]


def require_module(name: str) -> None:
    if importlib.util.find_spec(name) is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'", pytrace=False)


@dataclass(frozen=True)
class Dist:
    sdist: Path
    wheel: Path
    source: Path  # the copy of the package files they were built from


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    require_module("build")
    source = copy_package_tree(tmp_path_factory.mktemp("source"))
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", str(out), str(source)], cwd=out)
    sdists = sorted(out.glob("*.tar.gz"))
    wheels = sorted(out.glob("*.whl"))
    assert [p.name for p in sdists] == [f"lockresolve-{__version__}.tar.gz"]
    assert len(wheels) == 1 and wheels[0].name.startswith(f"lockresolve-{__version__}-")
    return Dist(sdists[0], wheels[0], source)


@dataclass(frozen=True)
class Venv:
    root: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def python(self, code: str, cwd: Path) -> str:
        return run([str(self.bin / "python"), "-c", code], cwd=cwd)


@pytest.fixture(scope="session")
def wheel_venv(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A new virtual environment (no system site-packages) with only the wheel installed;
    pip brings its runtime dependencies."""
    root = tmp_path_factory.mktemp("wheel-venv")
    run([sys.executable, "-m", "venv", str(root)], cwd=root)
    venv = Venv(root)
    run([str(venv.bin / "python"), "-m", "pip", "install", "--quiet", str(dist.wheel)], cwd=root)
    return venv


def test_git_ignores_no_file_of_the_package_or_the_tests() -> None:
    """A file git ignores is missing from every clone: a test reading it passes here and
    fails for everyone else (as `build/` and `dist/` once hid corpus files)."""
    done = subprocess.run(
        [
            "git",
            "ls-files",
            "--others",
            "--ignored",
            "--exclude-standard",
            "-z",
            "--",
            "lockresolve",
            "tests",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    )
    ignored = [
        name
        for name in done.stdout.decode().split("\0")
        if name and "__pycache__" not in name and not name.endswith((".pyc", ".so", ".o"))
    ]
    assert ignored == []


def test_sdist_carries_every_package_file(dist: Dist) -> None:
    prefix = f"lockresolve-{__version__}/"
    with tarfile.open(dist.sdist) as tar:
        members = {m.name.removeprefix(prefix) for m in tar.getmembers() if m.isfile()}
    ours = package_files()
    wanted = {name for name in ours if name.startswith("lockresolve/")}
    wanted |= {"README.md", "CHANGELOG.md", "LICENSE", "pyproject.toml"}
    wanted |= {name for name in ("setup.py", "MANIFEST.in") if name in ours}
    assert wanted - members == set()
    assert not [m for m in members if "__pycache__" in m or m.endswith((".pyc", ".so", ".o"))]


def test_wheel_metadata_is_what_an_index_shows(dist: Dist) -> None:
    with zipfile.ZipFile(dist.wheel) as wheel:
        names = set(wheel.namelist())
        info = f"lockresolve-{__version__}.dist-info"
        metadata = email.parser.Parser(policy=email.policy.compat32).parsestr(
            wheel.read(f"{info}/METADATA").decode()
        )
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    assert metadata["Name"] == "lockresolve"
    assert metadata["Version"] == __version__
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["Requires-Python"] == ">=3.11"
    assert metadata["Summary"] == PYPROJECT["description"]
    assert headers(metadata, "Classifier") == PYPROJECT["classifiers"]
    assert "Typing :: Typed" in headers(metadata, "Classifier")
    assert set(metadata["Keywords"].split(",")) >= {"kbld", "imgpkg", "kubernetes"}
    urls = dict(u.split(", ", 1) for u in headers(metadata, "Project-URL"))
    assert urls == PYPROJECT["urls"]
    assert "# lockresolve" in metadata.get_payload()  # the README is the long description
    # Only the runtime dependencies are unconditional; the test tools are an extra.
    plain = [r for r in headers(metadata, "Requires-Dist") if "extra ==" not in r]
    assert sorted(canonicalize_name(Requirement(r).name) for r in plain) == sorted(
        canonicalize_name(Requirement(r).name) for r in PYPROJECT["dependencies"]
    )
    assert "lockresolve = lockresolve.cli:main" in entry_points
    assert f"{info}/licenses/LICENSE" in names
    assert "lockresolve/py.typed" in names
    modules = {n for n in package_files() if n.startswith("lockresolve/") and n.endswith(".py")}
    assert modules - names == set()
    assert not [n for n in names if n.startswith("tests/")]


# Run inside the wheel's venv: every installed distribution and what each requires.
_INSTALLED = """
import json
from importlib.metadata import distributions
print(json.dumps({d.metadata["Name"]: d.requires or [] for d in distributions()}))
"""


def test_wheel_venv_holds_only_the_runtime_dependencies(wheel_venv: Venv, tmp_path: Path) -> None:
    installed: dict[str, list[str]] = {
        canonicalize_name(name): requires
        for name, requires in json.loads(wheel_venv.python(_INSTALLED, tmp_path)).items()
    }
    needed: set[str] = set()
    pending = ["lockresolve"]
    while pending:
        name = pending.pop()
        if name in needed:
            continue
        needed.add(name)
        for text in installed[name]:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                pending.append(canonicalize_name(req.name))
    assert set(installed) - VENV_SEED == needed
    assert "pytest" not in installed


def test_installed_wheel_resolves_against_the_registry(
    wheel_venv: Venv, registry: Registry, tmp_path: Path
) -> None:
    where = wheel_venv.python("import lockresolve; print(lockresolve.__file__)", tmp_path)
    assert Path(where.strip()).is_relative_to(wheel_venv.root)  # not this checkout
    lockresolve = str(wheel_venv.bin / "lockresolve")
    # Built where a C compiler is (here): the wheel carries the C encoder and uses it.
    assert (
        run([lockresolve, "--version"], cwd=tmp_path)
        == f"lockresolve, version {__version__} (gzip encoder: native C)\n"
    )

    case = get_case("resolve", "r01")
    seed_case(registry, case)
    inputs = case.copy_input(tmp_path / "in", registry.host)
    out = tmp_path / "out"
    out.mkdir()
    stdout = run([lockresolve, *case.cli_args(inputs, out, registry.host)], cwd=tmp_path)
    assert f"image: {registry.host}/conf/r01/web@sha256:" in stdout
    assert (out / "images.yml").read_text() == case.expected_text("images.yml", registry.host)


# Load the completion script into bash and ask it what it completes, as a terminal would.
_COMPLETE = """
eval "$(_LOCKRESOLVE_COMPLETE=bash_source lockresolve)"
complete -p lockresolve
ask() { COMPREPLY=(); COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1));
        _lockresolve_completion lockresolve; echo "${COMPREPLY[*]}"; }
ask lockresolve pu
ask lockresolve -f x --imgpkg
ask lockresolve resolve --fail
"""


def test_shell_completion(wheel_venv: Venv, tmp_path: Path) -> None:
    env = {"PATH": f"{wheel_venv.bin}{os.pathsep}{os.environ['PATH']}"}
    script = run(
        [str(wheel_venv.bin / "lockresolve")],
        cwd=tmp_path,
        env={"_LOCKRESOLVE_COMPLETE": "bash_source"},
    )
    assert "_lockresolve_completion()" in script
    for shell in ("zsh", "fish"):
        other = run(
            [str(wheel_venv.bin / "lockresolve")],
            cwd=tmp_path,
            env={"_LOCKRESOLVE_COMPLETE": f"{shell}_source"},
        )
        assert "_LOCKRESOLVE_COMPLETE" in other, shell
    lines = run(["bash", "-c", _COMPLETE], cwd=tmp_path, env=env).splitlines()
    assert lines == [
        "complete -o nosort -F _lockresolve_completion lockresolve",
        "pull push",
        "--imgpkg-lock-output",  # the default command's flags, as `lockresolve -f` is resolve
        "--fail-on-change",
    ]


def test_pipx_install(dist: Dist, tmp_path: Path) -> None:
    require_module("pipx")
    env = {
        "PIPX_HOME": str(tmp_path / "pipx"),
        "PIPX_BIN_DIR": str(tmp_path / "bin"),
        "PIPX_MAN_DIR": str(tmp_path / "man"),
        "PIPX_DEFAULT_PYTHON": sys.executable,
    }
    # `pipx install .` from the folder a user cloned (here: the copy of it).
    run([sys.executable, "-m", "pipx", "install", "."], cwd=dist.source, env=env)
    version = run([str(tmp_path / "bin" / "lockresolve"), "--version"], cwd=tmp_path)
    assert version == f"lockresolve, version {__version__} (gzip encoder: native C)\n"
