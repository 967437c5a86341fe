"""An ImagesLock's annotations survive ``copy --lock images.yml --to-tar`` then
``copy --tar ... --to-repo --lock-output`` (imgpkg #217), and the same through an OCI layout;
against the real registry. A copy straight from the lock is the reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from lockresolve.lock import ImagesLock
from tests.robustness.helpers import run_cli, seed_tags
from tests.support.registry import Registry


def _annotations_by_digest(path: Path) -> dict[str, dict[str, str]]:
    lock = ImagesLock.from_path(path)
    return {str(e.reference.digest): dict(e.annotations) for e in lock.images}


@pytest.mark.parametrize("form", ["tar", "oci-layout"])
def test_images_lock_annotations_survive_a_copy_through_files(
    form: str, registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    host = registry.host
    digests = seed_tags(registry, f"annot/{form}/src", ["a", "b", "c"])
    lock_in = tmp_path / "images.yml"
    lock_in.write_text(
        "apiVersion: imgpkg.carvel.dev/v1alpha1\nimages:\n"
        f"- annotations:\n    kbld.carvel.dev/id: app:a\n    team: payments\n"
        f"  image: {host}/annot/{form}/src@{digests['a']}\n"
        f"- image: {host}/annot/{form}/src@{digests['b']}\n"
        f"- annotations:\n    kbld.carvel.dev/id: 'app:c'\n"
        f"  image: {host}/annot/{form}/src@{digests['c']}\n"
        "kind: ImagesLock\n"
    )
    files = tmp_path / ("images.tar" if form == "tar" else "layout")
    through, direct = tmp_path / "through.yml", tmp_path / "direct.yml"

    for args in (
        ["copy", "--lock", str(lock_in), f"--to-{form}", str(files)],
        [
            "copy",
            f"--{form}",
            str(files),
            "--to-repo",
            f"{host}/annot/{form}/through",
            "--lock-output",
            str(through),
        ],
        [
            "copy",
            "--lock",
            str(lock_in),
            "--to-repo",
            f"{host}/annot/{form}/direct",
            "--lock-output",
            str(direct),
        ],
    ):
        res = run_cli(args, capfd)
        assert res.code == 0, res.err

    got = _annotations_by_digest(through)
    assert got == _annotations_by_digest(direct)
    assert got[digests["a"]] == {"kbld.carvel.dev/id": "app:a", "team": "payments"}
    assert got[digests["b"]] == {}
    assert got[digests["c"]] == {"kbld.carvel.dev/id": "app:c"}
    assert all(
        e.image.startswith(f"{host}/annot/{form}/through@")
        for e in ImagesLock.from_path(through).images
    )


def test_a_lock_without_annotations_writes_the_tar_as_before(
    registry: Registry, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """No annotations, no label: manifest.json's Labels stay null, as imgpkg writes them."""
    from lockresolve.bundle.formats.imgtar import read_imgpkg_tar

    digests = seed_tags(registry, "annot/plain/src", ["a"])
    lock_in = tmp_path / "images.yml"
    lock_in.write_text(
        "apiVersion: imgpkg.carvel.dev/v1alpha1\nimages:\n"
        f"- image: {registry.host}/annot/plain/src@{digests['a']}\nkind: ImagesLock\n"
    )
    tar = tmp_path / "t.tar"
    res = run_cli(["copy", "--lock", str(lock_in), "--to-tar", str(tar)], capfd)
    assert res.code == 0, res.err
    artifacts, _ = read_imgpkg_tar(tar)
    assert [a.labels for a in artifacts] == [None]
