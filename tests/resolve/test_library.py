"""The library API (docs/library.md) against the real registry: results as data."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lockresolve.errors import ResolveFailed
from lockresolve.registry.client import RegistryClient
from lockresolve.resolve.engine import (
    ResolveOptions,
    TextInput,
    resolve_inputs,
    resolve_inputs_sync,
)
from tests.support.faultproxy import Fault, FaultPlan, FaultProxy
from tests.support.images import make_image, push_image
from tests.support.registry import Registry

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _seed(registry: Registry, repo: str, tags: list[str]) -> dict[str, str]:
    async with RegistryClient() as client:
        return {
            tag: await push_image(client, registry.host, repo, tag, make_image(f"{repo}:{tag}"))
            for tag in tags
        }


def _deployment(name: str, *images: str) -> str:
    containers = "".join(
        f"      - name: c{i}\n        image: {im}\n" for i, im in enumerate(images)
    )
    return (
        "apiVersion: apps/v1\nkind: Deployment\n"
        f"metadata:\n  name: {name}  # keep me\n"
        f"spec:\n  template:\n    spec:\n      containers:\n{containers}"
    )


async def test_text_inputs_give_documents_locks_and_no_failures(registry: Registry) -> None:
    digests = await _seed(registry, "library/app", ["1", "2"])
    first = f"{registry.host}/library/app:1"
    second = f"{registry.host}/library/app:2"
    text = _deployment("a", first, second) + "---\n" + _deployment("b", first)
    result = await resolve_inputs([TextInput("apps.yml", text)])
    assert result.ok and result.failures == ()
    assert result.stats.total == 2  # one HEAD per distinct reference
    assert {ref: img.url for ref, img in result.resolved.items()} == {
        first: f"{registry.host}/library/app@{digests['1']}",
        second: f"{registry.host}/library/app@{digests['2']}",
    }
    assert [(o.ref, o.source, o.line) for o in result.occurrences] == [
        (first, "apps.yml", 10),
        (second, "apps.yml", 12),
        (first, "apps.yml", 23),
    ]
    assert result.output.count("# keep me") == 2
    assert f"image: {registry.host}/library/app@{digests['1']}" in result.output
    assert result.images_lock_text().startswith("---\napiVersion: imgpkg.carvel.dev/v1alpha1\n")
    # A readable repr, however large the run.
    assert repr(result) == "<ResolveResult 2 resources, 2 resolved, 0 failures, 2 requests>"


def test_the_sync_wrapper_returns_failures_as_data(registry: Registry) -> None:
    missing = f"{registry.host}/library/absent:9"
    result = resolve_inputs_sync([TextInput("x.yml", _deployment("x", missing))])
    assert not result.ok
    assert result.output == ""
    (failure,) = result.failures
    assert failure.reference == missing
    assert [(o.source, o.line) for o in failure.occurrences] == [("x.yml", 10)]
    assert "x.yml:10" in str(failure)


async def test_output_keeps_input_order_when_lookups_finish_out_of_order(
    registry: Registry, fault_proxy_factory: Callable[..., FaultProxy]
) -> None:
    """Each resource is rendered once its references are resolved (while others are
    still in flight); the documents still come out in input order, and equal what
    a run without delays gives."""
    await _seed(registry, "library/order", ["slow", "fast1", "fast2"])
    proxy = fault_proxy_factory(registry.url)
    slow, fast1, fast2 = (f"{proxy.host}/library/order:{t}" for t in ("slow", "fast1", "fast2"))
    inputs = [
        TextInput("1.yml", _deployment("one", slow)),
        TextInput("2.yml", _deployment("two", fast1) + "---\n" + _deployment("three", slow)),
        TextInput("3.yml", _deployment("four", fast2)),
    ]
    options = ResolveOptions()
    plain = await resolve_inputs(inputs, options)
    proxy.plan = FaultPlan(
        sequence=[Fault.delay(0.5)], methods={"HEAD"}, path_contains="/manifests/slow"
    )
    delayed = await resolve_inputs(inputs, options)
    assert proxy.fault_count == 1  # the slow image really was answered last
    assert delayed.output == plain.output
    names = [line for line in delayed.output.splitlines() if line.startswith("  name:")]
    assert names == [f"  name: {n}  # keep me" for n in ("one", "two", "three", "four")]


def test_a_partial_lock_cannot_be_taken_from_a_failed_run(registry: Registry) -> None:
    """Issue 15: one reference resolves, one does not; the lock would silently lack it."""
    digests = anyio_run_seed(registry, "library/partial", ["1"])
    good = f"{registry.host}/library/partial:1"
    missing = f"{registry.host}/library/partial:9"
    result = resolve_inputs_sync([TextInput("x.yml", _deployment("x", good, missing))])
    assert good in result.resolved and result.resolved[good].url.endswith(digests["1"])
    for take in (result.images_lock_text, result.kbld_lock_text, result.raise_for_failures):
        with pytest.raises(ResolveFailed) as caught:
            take()
        assert caught.value.failures == result.failures
        assert str(caught.value).startswith("1 image reference(s) failed to resolve:\n- ")
        assert f"Resolving image '{missing}' (x.yml:12)" in str(caught.value)


def test_raise_for_failures_is_silent_when_all_resolved(registry: Registry) -> None:
    anyio_run_seed(registry, "library/whole", ["1"])
    ref = f"{registry.host}/library/whole:1"
    result = resolve_inputs_sync([TextInput("x.yml", _deployment("x", ref))])
    result.raise_for_failures()
    assert ref in result.images_lock_text()


def anyio_run_seed(registry: Registry, repo: str, tags: list[str]) -> dict[str, str]:
    import anyio

    return anyio.run(_seed, registry, repo, tags)


def test_library_doc_names_every_registry_settings_field() -> None:
    """Issue 15: a user guessed ``retry_count``; every public field is documented."""
    import dataclasses
    from pathlib import Path

    from lockresolve.registry.settings import RegistrySettings

    doc = (Path(__file__).parents[2] / "docs" / "library.md").read_text()
    for f in dataclasses.fields(RegistrySettings):
        assert f"`{f.name}`" in doc, f.name
    assert "raise_for_failures()" in doc
