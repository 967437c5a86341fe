"""Reading a lock by its layout gives what the strict YAML reader gives, or declines.

``pins_from_images_lock`` first tries ``_pins_from_written_lock``, which accepts a
lock only when writing its result back reproduces the file byte for byte; any
other file goes to the strict reader.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lockresolve.errors import InputError
from lockresolve.lock import ID_ANNOTATION, ORIGINS_ANNOTATION, images_lock_text, read_images_lock
from lockresolve.resolve import pins as engine
from lockresolve.resolve.model import LockEntry, ResolvedImage
from lockresolve.resolve.origins import parse_origins
from tests.resolve.pipeline import cases

DIGEST = "sha256:" + "ab" * 32


def strict_pins(text: str, source: str = "images.yml") -> dict[str, ResolvedImage]:
    """The strict reader alone (what pins_from_images_lock did before the fast path)."""
    pins: dict[str, ResolvedImage] = {}
    for entry in read_images_lock(text, source).images:
        ref = entry.annotations.get(ID_ANNOTATION)
        if not ref:
            continue
        origins = parse_origins(entry.annotations.get(ORIGINS_ANNOTATION, ""), InputError)
        pins[ref] = ResolvedImage(entry.image, origins)
    return pins


def conformance_locks() -> list[str]:
    return [t for c in cases(None) if (t := c.expected("images.yml")) is not None]


def test_conformance_locks_read_the_same_and_mostly_fast() -> None:
    texts = conformance_locks()
    assert texts
    fast = 0
    for text in texts:
        assert engine.pins_from_images_lock(text, "images.yml") == strict_pins(text)
        if engine._pins_from_written_lock(text) is not None:
            fast += 1
    assert fast >= len(texts) // 2, (fast, len(texts))


def sample_lock() -> str:
    entries = [
        LockEntry(
            f"reg.io/app{i}:1.{i}",
            f"reg.io/app{i}@{DIGEST}",
            ({"resolved": {"tag": f"1.{i}", "url": f"reg.io/app{i}:1.{i}"}},),
        )
        for i in range(3)
    ] + [
        LockEntry(f"reg.io/pre@{DIGEST}", f"reg.io/pre@{DIGEST}"),
        LockEntry("reg.io/p", f"reg.io/p@{DIGEST}", ({"preresolved": {"url": "reg.io/p"}},)),
        LockEntry(
            "reg.io/multi:2",
            f"reg.io/multi@{DIGEST}",
            (
                {"resolved": {"tag": "2", "url": "reg.io/multi:2"}},
                {"platformSelected": {"architecture": "arm64", "os": "linux"}},
            ),
        ),
    ]
    return images_lock_text(entries)


def test_a_written_lock_is_read_fast() -> None:
    text = sample_lock()
    fast = engine._pins_from_written_lock(text)
    assert fast is not None
    assert fast == strict_pins(text)
    assert len(fast) == 6


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t.replace("kind: ImagesLock\n", "kind: ImagesLock # edited\n"),
        lambda t: t.replace("- annotations:\n", "- annotations: # x\n", 1),
        lambda t: t.replace(
            "kbld.carvel.dev/id: reg.io/app1:1.1", 'kbld.carvel.dev/id: "reg.io/app1:1.1"'
        ),
        lambda t: t.replace("  image: reg.io/app1@", "  image: docker.io/library/x@", 1),
        lambda t: t.replace(f"reg.io/app2@{DIGEST}", "reg.io/app2:1.2"),
        lambda t: t.replace('tag: "1.0"', "tag: '1.0'"),
        lambda t: t.replace("    url: reg.io/p\n", "    url: reg.io/p\n    extra: 1\n"),
        lambda t: t.replace("- resolved:", "- Resolved:", 1),
        lambda t: t.replace("|\n", "|-\n", 1),
        lambda t: t + "---\n",
        lambda t: t.replace("\n", "\r\n"),
        lambda t: t.replace("apiVersion: imgpkg.carvel.dev/v1alpha1", "apiVersion: x/v1"),
    ],
)
def test_anything_else_goes_to_the_strict_reader(edit: object) -> None:
    assert callable(edit)
    text = edit(sample_lock())
    assert text != sample_lock()
    assert engine._pins_from_written_lock(text) is None
    assert _outcome(engine.pins_from_images_lock, text) == _outcome(strict_pins, text)


def _outcome(
    read: Callable[[str, str], Mapping[str, ResolvedImage]], text: str
) -> Mapping[str, ResolvedImage] | str:
    """What a reader makes of ``text``: its pins, or its error message."""
    try:
        return read(text, "images.yml")
    except InputError as exc:
        return str(exc)


_TEXT = st.one_of(
    st.text(
        alphabet=st.sampled_from("aZ09:./@-_ #'\"\\\n\t\u00e9\u2028~"), min_size=1, max_size=12
    ),
    st.sampled_from(["true", "1.0", "~", "null", "0x1F", "1:20", "-", "a:"]),
)


@given(
    st.lists(
        st.tuples(
            _TEXT,
            st.sampled_from(["reg.io/a", "localhost:5000/b/c", "index.docker.io/library/x"]),
            st.one_of(
                st.none(),
                st.tuples(_TEXT, _TEXT).map(lambda t: {"resolved": {"tag": t[0], "url": t[1]}}),
                _TEXT.map(lambda u: {"preresolved": {"url": u}}),
            ),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_generated_locks_read_as_the_strict_reader_reads_them(
    items: list[tuple[str, str, dict[str, object] | None]],
) -> None:
    entries = [
        LockEntry(ref, f"{repo}@{DIGEST}", (origin,) if origin else ())
        for ref, repo, origin in items
    ]
    text = images_lock_text(entries)
    assert _outcome(engine.pins_from_images_lock, text) == _outcome(strict_pins, text)
