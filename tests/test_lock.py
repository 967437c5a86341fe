"""Lock files: kbld's and imgpkg's bytes, and imgpkg's strict readers."""

from __future__ import annotations

from pathlib import Path

import pytest

from lockresolve.errors import InputError
from lockresolve.lock import (
    BundleLock,
    ImagesLock,
    ImagesLockEntry,
    LockError,
    bundle_lock_text,
    images_lock_text,
    kbld_lock_text,
    read_any_lock,
    read_bundle_lock,
    read_images_lock,
)
from lockresolve.resolve.configmodel import (
    KeyMatcher,
    PathIndex,
    SearchRule,
    UpdateStrategy,
    ValueMatcher,
)
from lockresolve.resolve.model import LockEntry, lock_entries
from tests.resolve.pipeline import cases, mapping_from_images_lock

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
RESOLVED = ({"resolved": {"tag": "1.0", "url": "reg.io/app:1.0"}},)


def test_every_conformance_images_lock_round_trips() -> None:
    """Reading kbld's lock and writing it back gives the same bytes."""
    for case in cases(0):
        text = case.expected("images.yml")
        if text is None:
            continue
        lock = read_images_lock(text, "images.yml")
        assert images_lock_text(lock_entries(mapping_from_images_lock(text))) == text
        assert all(isinstance(e, ImagesLockEntry) for e in lock.images)


def test_images_lock_sorted_by_id_origins_optional() -> None:
    entries = [
        LockEntry("reg.io/app:1.0", f"reg.io/app@{D1}", RESOLVED),
        LockEntry(f"reg.io/app@{D2}", f"reg.io/app@{D2}"),
    ]
    assert images_lock_text(entries) == (
        "---\n"
        "apiVersion: imgpkg.carvel.dev/v1alpha1\n"
        "images:\n"
        "- annotations:\n"
        "    kbld.carvel.dev/id: reg.io/app:1.0\n"
        "    kbld.carvel.dev/origins: |\n"
        "      - resolved:\n"
        '          tag: "1.0"\n'
        "          url: reg.io/app:1.0\n"
        f"  image: reg.io/app@{D1}\n"
        "- annotations:\n"
        f"    kbld.carvel.dev/id: reg.io/app@{D2}\n"
        f"  image: reg.io/app@{D2}\n"
        "kind: ImagesLock\n"
    )
    assert "origins" not in images_lock_text(entries, origins=False)
    assert images_lock_text([]) == "---\napiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\n"


def test_ids_that_look_like_yaml_values_are_quoted() -> None:
    text = images_lock_text(
        [LockEntry("1.0", f"reg.io/app@{D1}"), LockEntry("yes", f"reg.io/app@{D1}")]
    )
    assert 'kbld.carvel.dev/id: "1.0"\n' in text and 'kbld.carvel.dev/id: "yes"\n' in text
    assert [e.annotations["kbld.carvel.dev/id"] for e in read_images_lock(text).images] == [
        "1.0",
        "yes",
    ]


def test_kbld_lock_with_search_rules() -> None:
    rules = (
        SearchRule(KeyMatcher(name="sidecarImage")),
        SearchRule(KeyMatcher(path=("spec", PathIndex(all_indexes=True), PathIndex(index=0)))),
        SearchRule(None, ValueMatcher(image_repo="reg.io/d")),
        SearchRule(KeyMatcher(name="image"), ValueMatcher(image="x"), UpdateStrategy(none=True)),
        SearchRule(
            KeyMatcher(name="c"), None, UpdateStrategy(yaml=(SearchRule(KeyMatcher(name="i")),))
        ),
        SearchRule(KeyMatcher(name="j"), None, UpdateStrategy(json=())),
    )
    text = kbld_lock_text([LockEntry("app", f"reg.io/app@{D1}", RESOLVED)], rules)
    assert text == (
        "apiVersion: kbld.k14s.io/v1alpha1\n"
        "kind: Config\n"
        "minimumRequiredVersion: 0.42.0\n"
        "overrides:\n"
        "- image: app\n"
        f"  newImage: reg.io/app@{D1}\n"
        "  preresolved: true\n"
        "searchRules:\n"
        "- keyMatcher:\n    name: sidecarImage\n"
        "- keyMatcher:\n    path:\n    - spec\n    - allIndexes: true\n    - index: 0\n"
        "- valueMatcher:\n    imageRepo: reg.io/d\n"
        "- keyMatcher:\n    name: image\n  updateStrategy:\n    none: {}\n  valueMatcher:\n    image: x\n"
        "- keyMatcher:\n    name: c\n  updateStrategy:\n    yaml:\n      searchRules:\n"
        "      - keyMatcher:\n          name: i\n"
        "- keyMatcher:\n    name: j\n  updateStrategy:\n    json: {}\n"
    )
    assert "searchRules" not in kbld_lock_text([LockEntry("app", f"reg.io/app@{D1}")])


def test_read_images_lock_normalises_like_imgpkg() -> None:
    lock = read_images_lock(
        "---\napiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n"
        f"- image: ubuntu:22.04@{D1}\n"
        f"- image: docker.io/org/app@{D2}\n  annotations: {{kbld.carvel.dev/id: 1.0}}\n"
    )
    assert [e.image for e in lock.images] == [
        f"index.docker.io/library/ubuntu@{D1}",
        f"index.docker.io/org/app@{D2}",
    ]
    assert lock.images[1].annotations == {"kbld.carvel.dev/id": "1"}, "Go string coercion of 1.0"


HEAD = "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\n"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (HEAD + "images:\n- image: reg.io/app:1.0\n", 4, "Expected ref to be in digest form"),
        (HEAD + f"images:\n- image: reg.io/App@{D1}\n", 4, "Expected ref to be in digest form"),
        (
            HEAD + "images:\n- image: reg.io/app@sha256:abc\n",
            4,
            "Expected ref to be in digest form",
        ),
        (HEAD + f"images:\n- image: reg.io/app@{D1}\n  extra: 1\n", 5, 'unknown field "extra"'),
        (HEAD + "other: 1\n", 3, 'unknown field "other"'),
        (HEAD + "images: {}\n", 3, "expected a list"),
        (HEAD + f"images:\n- image: reg.io/app@{D1}\n  annotations: [a]\n", 5, "expected a map"),
        (
            HEAD + f"images:\n- image: reg.io/app@{D1}\n  image: reg.io/b@{D1}\n",
            5,
            "already defined",
        ),
        ("apiVersion: imgpkg.carvel.dev/v1\nkind: ImagesLock\n", 1, "Unknown version"),
        ("apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: BundleLock\n", 2, "Unknown kind"),
        ("- a\n", 1, "expected a map"),
    ],
)
def test_read_images_lock_is_strict(text: str, line: int, message: str) -> None:
    with pytest.raises(LockError) as caught:
        read_images_lock(text, "images.yml")
    assert isinstance(caught.value, InputError)
    assert caught.value.source == "images.yml" and caught.value.line == line
    assert message in str(caught.value)


def test_bundle_lock_round_trip() -> None:
    text = bundle_lock_text(f"reg.io/bundle@{D1}", "v1.0.0")
    assert text == (
        "---\napiVersion: imgpkg.carvel.dev/v1alpha1\nbundle:\n"
        f"  image: reg.io/bundle@{D1}\n  tag: v1.0.0\nkind: BundleLock\n"
    )
    assert read_bundle_lock(text) == BundleLock(f"reg.io/bundle@{D1}", "v1.0.0")
    assert 'tag: "1.0"' in bundle_lock_text(f"reg.io/bundle@{D1}", "1.0")


@pytest.mark.parametrize(
    "text",
    [
        "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: BundleLock\nbundle: {image: reg.io/b:1}\n",
        f"apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: BundleLock\nbundle: {{image: reg.io/b@{D1}, x: 1}}\n",
        f"apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nbundle: {{image: reg.io/b@{D1}}}\n",
    ],
)
def test_read_bundle_lock_is_strict(text: str) -> None:
    with pytest.raises(LockError):
        read_bundle_lock(text, "bundle.yml")


def test_bundle_lock_writer_refuses_tags() -> None:
    with pytest.raises(LockError):
        bundle_lock_text("reg.io/bundle:1.0", "1.0")


def test_what_the_resolver_writes_reads_back_as_written() -> None:
    """References follow ggcr HEAD everywhere, the lock reader included (not v0.19.1)."""
    entries = [
        LockEntry("localhost/app:1", f"localhost/app@{D1}"),
        LockEntry("reg.io/a:1", f"reg.io/a@{D2}"),
    ]
    text = images_lock_text(entries)
    assert [e.image for e in read_images_lock(text).images] == [e.image for e in entries]
    assert read_bundle_lock(bundle_lock_text(f"reg.io/a@{D1}", "")).image == f"reg.io/a@{D1}"


def test_bundle_commands_read_with_imgpkgs_wording(tmp_path: Path) -> None:
    """One parser; the bundle side puts lockconfig's stage before the same message."""
    data = (HEAD + "images:\n- image: reg.io/app:1.0\n").encode()
    with pytest.raises(LockError) as caught:
        ImagesLock.from_bytes(data, "images.yml")
    assert str(caught.value) == (
        "images.yml:4: Validating images lock: Expected ref to be in digest form, got 'reg.io/app:1.0'"
    )
    with pytest.raises(LockError, match='Unmarshaling images lock: ImagesLock: unknown field "x"'):
        ImagesLock.from_bytes((HEAD + "x: 1\n").encode(), "images.yml")
    with pytest.raises(LockError, match="Unmarshaling bundle lock: "):
        BundleLock.from_bytes(b"a: [", "bundle.yml")
    lock = ImagesLock((ImagesLockEntry(f"reg.io/app@{D1}", {"a": "b"}),))
    path = tmp_path / "lock.yml"
    lock.write(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_any_lock(path) == ImagesLock.from_path(path) == lock
    BundleLock(f"reg.io/b@{D1}", "1.0").write(path)
    assert read_any_lock(path) == BundleLock(f"reg.io/b@{D1}", "1.0")
    path.write_text("kind: Other\n")
    with pytest.raises(LockError, match="Trying to read bundle or images lock file: Validating"):
        read_any_lock(path)
