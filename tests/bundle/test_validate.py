"""imgpkg's bundle rules for the -f paths of push -b and push -i."""

from __future__ import annotations

from pathlib import Path

import pytest

from lockresolve.bundle.validate import (
    BundleValidationError,
    find_imgpkg_dirs,
    presents_as_bundle,
    refuse_bundle_as_image,
    validate_bundle,
)
from lockresolve.errors import BundleError, InputError


def _bundle(root: Path) -> Path:
    (root / ".imgpkg").mkdir(parents=True)
    (root / ".imgpkg/images.yml").write_text("---\napiVersion: imgpkg.carvel.dev/v1alpha1\n")
    (root / "config.yml").write_text("a: 1\n")
    return root


def test_valid_bundle_returns_its_imgpkg_dir(tmp_path: Path) -> None:
    root = _bundle(tmp_path / "b")

    assert validate_bundle([root]) == str(root / ".imgpkg")
    assert presents_as_bundle([root])


def test_bundle_in_second_path_is_found(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    root = _bundle(tmp_path / "b")

    assert validate_bundle([tmp_path / "plain", root]) == str(root / ".imgpkg")


def test_no_imgpkg_dir(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()

    with pytest.raises(BundleError) as err:
        validate_bundle([tmp_path / "plain"])
    assert str(err.value) == "This directory is not a bundle. It is missing .imgpkg/images.yml"


def test_more_than_one_imgpkg_dir(tmp_path: Path) -> None:
    one = _bundle(tmp_path / "one")
    two = _bundle(tmp_path / "two")

    with pytest.raises(BundleError) as err:
        validate_bundle([one, two])
    assert str(err.value) == (
        "This directory contains multiple bundle definitions. Only a single instance of "
        ".imgpkg/images.yml can be provided and instead these were provided "
        f"{one / '.imgpkg'}, {two / '.imgpkg'}"
    )


def test_imgpkg_dir_nested_deeper(tmp_path: Path) -> None:
    _bundle(tmp_path / "root/sub")

    with pytest.raises(BundleError) as err:
        validate_bundle([tmp_path / "root"])
    assert str(err.value) == (
        f"Expected '.imgpkg' directory, to be a direct child of one of: {tmp_path / 'root'}; "
        f"was {tmp_path / 'root/sub/.imgpkg'}"
    )


def test_imgpkg_dir_without_images_yml(tmp_path: Path) -> None:
    (tmp_path / "root/.imgpkg").mkdir(parents=True)
    (tmp_path / "root/.imgpkg/bundle.yml").write_text("kind: Bundle\n")

    with pytest.raises(BundleError) as err:
        validate_bundle([tmp_path / "root"])
    assert str(err.value) == (
        "The bundle expected .imgpkg/images.yml to exist, but it wasn't found in the path "
        f"{tmp_path / 'root/.imgpkg/images.yml'}"
    )


def test_relative_paths_are_compared_as_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _bundle(tmp_path / "b")
    monkeypatch.chdir(tmp_path)

    assert validate_bundle(["b/"]) == str(tmp_path / "b/.imgpkg")


def test_exclusions_do_not_hide_an_imgpkg_dir(tmp_path: Path) -> None:
    # imgpkg walks everything here, .git included.
    root = _bundle(tmp_path / "b")
    (root / ".git/.imgpkg").mkdir(parents=True)

    assert len(find_imgpkg_dirs([root])) == 2
    with pytest.raises(BundleValidationError, match="multiple bundle definitions"):
        validate_bundle([root])


def test_image_push_refuses_a_valid_bundle(tmp_path: Path) -> None:
    root = _bundle(tmp_path / "b")

    with pytest.raises(BundleError) as err:
        refuse_bundle_as_image([root])
    assert str(err.value) == (
        "Images cannot be pushed with '.imgpkg' directories, consider using --bundle (-b) option"
    )


def test_image_push_accepts_an_invalid_bundle_shape(tmp_path: Path) -> None:
    # imgpkg only refuses -i when the paths would pass as a bundle.
    _bundle(tmp_path / "root/sub")
    (tmp_path / "plain").mkdir()

    refuse_bundle_as_image([tmp_path / "root"])
    refuse_bundle_as_image([tmp_path / "plain"])
    assert not presents_as_bundle([tmp_path / "root"])


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^lstat .*/nope: no such file or directory$"):
        validate_bundle([tmp_path / "nope"])
