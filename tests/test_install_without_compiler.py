"""A machine without a C compiler still installs lockresolve and pushes imgpkg's bytes.

The package is built by pip from a copy of the sources with ``CC=false`` (every
compiler call fails, as on a machine without one) and installed into a fresh
directory; that installation has no ``_native`` module, says so in
``--version``, and pushes a bundle to a real registry with the same manifest
digest as this environment's C encoder. ``LOCKRESOLVE_NO_EXTENSIONS=1`` (the
documented switch to skip the build) is checked the same way, without a push.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support.registry import Registry

REPO = Path(__file__).resolve().parents[1]


def _copy_sources(dest: Path) -> Path:
    """The files pip needs, without any built extension or caches."""
    src = dest / "src"
    shutil.copytree(
        REPO / "lockresolve",
        src / "lockresolve",
        ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"),
    )
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, src / name)
    return src


def _build_and_install(tmp_path: Path, env: dict[str, str]) -> tuple[Path, str]:
    """Build a wheel with ``env`` and install it into a new directory: (site dir, build log)."""
    src = _copy_sources(tmp_path)
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(wheels), str(src)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=600,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (wheel,) = wheels.glob("lockresolve-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "lockresolve/goflate/pure.py" in names
    assert not [n for n in names if n.endswith((".so", ".pyd"))]
    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    return site, build.stdout + build.stderr


def _run(site: Path | None, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LOCKRESOLVE_PURE_GOFLATE"}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [sys.executable, "-m", "lockresolve.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


def _where(site: Path, cwd: Path) -> str:
    code = "import lockresolve.goflate as g; print(g.__file__)"
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd, check=True
    )
    return out.stdout.strip()


def test_without_a_compiler_pip_installs_the_pure_encoder_and_push_gives_the_same_digest(
    registry: Registry, tmp_path: Path
) -> None:
    site, log = _build_and_install(tmp_path, {"CC": "false", "LOCKRESOLVE_NO_EXTENSIONS": "0"})
    assert "the C encoder was not built" in log
    work = tmp_path / "work"
    work.mkdir()
    assert _where(site, work).startswith(str(site))
    version = _run(site, ["--version"], work)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip().endswith("(gzip encoder: pure Python)")

    bundle = work / "bundle"
    (bundle / ".imgpkg").mkdir(parents=True)
    (bundle / ".imgpkg" / "images.yml").write_text(
        "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages: []\n"
    )
    rng = random.Random(13)
    for i in range(3):
        lines = [
            f"- image: r.example/app{i}-{n}@sha256:{rng.getrandbits(256):064x}" for n in range(3000)
        ]
        (bundle / f"config-{i}.yml").write_text("\n".join(lines) + "\n")
    digests = []
    for site_dir, repo in ((site, "nocc/pure"), (None, "nocc/native")):
        lock = work / f"{repo.replace('/', '-')}.yml"
        ref = f"{registry.host}/{repo}:v1"
        pushed = _run(
            site_dir, ["push", "-b", ref, "-f", str(bundle), "--lock-output", str(lock)], work
        )
        assert pushed.returncode == 0, pushed.stderr
        digests.append(lock.read_text().split("@")[1].split()[0])
    pure, native = digests
    assert pure == native
    assert pure.startswith("sha256:")


def test_lockresolve_no_extensions_skips_the_build(tmp_path: Path) -> None:
    site, log = _build_and_install(tmp_path, {"LOCKRESOLVE_NO_EXTENSIONS": "1"})
    assert "LOCKRESOLVE_NO_EXTENSIONS=1, not building the C encoder" in log
    work = tmp_path / "work"
    work.mkdir()
    out = _run(site, ["--version"], work)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("(gzip encoder: pure Python)")
