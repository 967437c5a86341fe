"""The bundle commands: ``push``, ``pull``, ``copy`` and ``tag`` (``ls``, ``resolve``).

Each command parses its flags, checks imgpkg's flag combinations, and calls
one library function under :func:`anyio.run`; errors propagate to
:func:`lockresolve.cli.main`, which prints one line and picks the exit code.
Library modules are imported inside the commands so ``--help`` starts fast.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click

from lockresolve.cli_options import bool_option, registry_options, settings_from_kwargs

if TYPE_CHECKING:
    from lockresolve.registry.client import RegistryClient
    from lockresolve.registry.settings import RegistrySettings

T = TypeVar("T")

__all__ = ["copy_command", "describe_command", "pull_command", "push_command", "tag_group"]


def _split(values: Iterable[str]) -> list[str]:
    """pflag's string slices: repeatable, and commas split one value into several."""
    return [part for value in values for part in value.split(",") if part != ""]


def _fail(message: str) -> None:
    from lockresolve.errors import UsageError

    raise UsageError(message)


def _run(settings: RegistrySettings, work: Callable[[RegistryClient], Awaitable[T]]) -> T:
    """``work`` under :func:`anyio.run`, with the run's one registry client."""
    import anyio

    from lockresolve.interrupts import mark_committed

    async def run() -> T:
        async with settings.client() as client:
            result = await work(client)
            mark_committed()  # written and complete: a later Ctrl-C exits 0
            return result

    return anyio.run(run)


# --- push --------------------------------------------------------------------


@click.command("push")
@click.option("-b", "--bundle", help="Bundle reference to push to (a tag).")
@click.option("-i", "--image", help="Image reference to push to (a tag).")
@click.option(
    "-f",
    "--file",
    "files",
    multiple=True,
    required=True,
    help="File or directory to include; repeatable, commas split.",
)
@click.option(
    "--file-exclusion",
    "exclusions",
    multiple=True,
    help="Path relative to its -f root to leave out (default .git); repeatable.",
)
@click.option("-l", "--labels", multiple=True, help="Config label key=value; repeatable.")
@click.option(
    "--lock-output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a BundleLock of the pushed bundle.",
)
@click.option(
    "--gzip",
    type=click.Choice(["go", "zlib"]),
    default="go",
    show_default=True,
    help="go: imgpkg's exact layer bytes and digest; zlib: much faster, other digest.",
)
@click.option(
    "--lock-images",
    is_flag=True,
    help="First resolve the images in the bundle's YAML into .imgpkg/images.yml (-b only).",
)
@click.option(
    "--lock-images-exclude",
    "lock_images_exclude",
    multiple=True,
    metavar="GLOB",
    help="With --lock-images: a path in the bundle (or folder; glob) to keep but not "
    "resolve, e.g. a Helm chart's templates; repeatable.",
)
@registry_options()
def push_command(**kwargs: Any) -> None:
    """Push files as a bundle (-b) or a plain image (-i), as imgpkg push."""
    from lockresolve.bundle.commands.push import push
    from lockresolve.bundle.formats.image import parse_label_flags
    from lockresolve.bundle.progress import Progress

    settings = settings_from_kwargs(kwargs)
    bundle, image = kwargs["bundle"], kwargs["image"]
    if bundle and image:
        _fail("Expected only one of image or bundle")
    if not bundle and not image:
        _fail("Expected either image or bundle")
    if kwargs["lock_images"] and not bundle:
        _fail("--lock-images needs a bundle (-b)")
    if kwargs["lock_images_exclude"] and not kwargs["lock_images"]:
        _fail("--lock-images-exclude needs --lock-images")
    labels = parse_label_flags(kwargs["labels"])
    exclusions = _split(kwargs["exclusions"]) if kwargs["exclusions"] else None

    async def run(client: RegistryClient) -> str:
        if kwargs["lock_images"]:
            from lockresolve.bundle.commands.lockimages import push_with_locked_images

            with Progress("push") as progress:
                locked = await push_with_locked_images(
                    client,
                    bundle,
                    _split(kwargs["files"]),
                    exclusions=exclusions,
                    lock_exclusions=tuple(kwargs["lock_images_exclude"]),
                    labels=labels,
                    lock_output=kwargs["lock_output"],
                    gzip=kwargs["gzip"],
                    on_line=click.echo,
                    on_resolved=lambda line: click.echo(line, err=True),
                    progress=progress,
                )
            return locked.push.image
        with Progress("push") as progress:
            result = await push(
                client,
                bundle or image,
                _split(kwargs["files"]),
                bundle=bool(bundle),
                exclusions=exclusions,
                labels=labels,
                lock_output=kwargs["lock_output"],
                gzip=kwargs["gzip"],
                on_line=click.echo,
                progress=progress,
            )
        return result.image

    pushed = _run(settings, run)
    click.echo(f"Pushed '{pushed}'")
    click.echo("Succeeded")


# --- pull --------------------------------------------------------------------


@click.command("pull")
@click.option("-b", "--bundle", help="Bundle reference to pull.")
@click.option("-i", "--image", help="Image reference to pull.")
@click.option(
    "--lock",
    "lock",
    type=click.Path(dir_okay=False, path_type=Path),
    help="BundleLock file naming the bundle to pull.",
)
@click.option(
    "--tar",
    "tar",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="imgpkg tar (copy --to-tar) to extract the bundle or image from, no registry.",
)
@click.option(
    "--oci-layout",
    "oci_layout",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="OCI image layout to extract the bundle or image from, no registry.",
)
@click.option("-o", "--output", "output", required=True, help="Output directory.")
@click.option("-r", "--recursive", is_flag=True, help="Also pull nested bundles.")
@bool_option(
    "--image-is-bundle-check", True, "Refuse a bundle given with -i (false: pull its files)."
)
@click.option("--force", is_flag=True, help="Replace a non-empty output directory.")
@click.option(
    "--include-path",
    "include_paths",
    multiple=True,
    metavar="PATH",
    help="Extract only this file or folder (relative to the bundle root) and .imgpkg/; repeatable.",
)
@click.option(
    "--preserve-permissions",
    is_flag=True,
    help="Give every file and folder exactly its archive mode, whatever the umask.",
)
@registry_options()
def pull_command(**kwargs: Any) -> None:
    """Pull a bundle (-b, --lock) or an image (-i) into a directory, as imgpkg pull."""
    from lockresolve.bundle.commands.pull import check_output_path, pull
    from lockresolve.bundle.progress import Progress

    settings = settings_from_kwargs(kwargs)
    output: str = kwargs["output"]
    check_output_path(output)
    sources = [kwargs["lock"], kwargs["bundle"], kwargs["image"]]
    files = [kwargs["tar"], kwargs["oci_layout"]]
    given = sum(1 for s in sources if s)
    if given + sum(1 for f in files if f) > 1:
        _fail(
            "Expected only one of image, bundle, or lock"
            if given > 1
            else "Expected only one of image, bundle, lock, --tar or --oci-layout"
        )
    if any(files):
        _pull_from_files(kwargs, output)
        return
    if given == 0:
        _fail("Expected either image or bundle reference")
    if kwargs["recursive"] and kwargs["image"]:
        _fail("Cannot use --recursive (-r) flag when pulling a bundle")
    if not kwargs["image_is_bundle_check"] and kwargs["bundle"]:
        _fail("Cannot set --image-is-bundle-check while using -b flag")
    if kwargs["lock"]:
        from lockresolve.lock import BundleLock

        source = BundleLock.from_path(kwargs["lock"]).image
    else:
        source = kwargs["bundle"] or kwargs["image"]
    kind: Literal["bundle", "image"] = "image" if kwargs["image"] else "bundle"

    async def run(client: RegistryClient) -> None:
        with Progress("pull") as progress:
            await pull(
                client,
                source,
                output,
                kind=kind,
                recursive=kwargs["recursive"],
                force=kwargs["force"],
                image_is_bundle_check=kwargs["image_is_bundle_check"],
                include_paths=kwargs["include_paths"],
                preserve_permissions=kwargs["preserve_permissions"],
                on_line=click.echo,
                progress=progress,
            )

    _run(settings, run)
    click.echo("")
    click.echo("Succeeded")


def _pull_from_files(kwargs: dict[str, Any], output: str) -> None:
    """``pull --tar FILE`` / ``--oci-layout DIR``: no registry, so no client."""
    import anyio

    from lockresolve.bundle.commands.pulltar import pull_from_files

    if not kwargs["image_is_bundle_check"]:
        _fail("Cannot set --image-is-bundle-check with --tar or --oci-layout")
    anyio.run(
        lambda: pull_from_files(
            output,
            tar=kwargs["tar"],
            oci_layout=kwargs["oci_layout"],
            recursive=kwargs["recursive"],
            force=kwargs["force"],
            include_paths=kwargs["include_paths"],
            preserve_permissions=kwargs["preserve_permissions"],
            on_line=click.echo,
        )
    )
    click.echo("")
    click.echo("Succeeded")


# --- describe ----------------------------------------------------------------


@click.command("describe")
@click.option("-b", "--bundle", required=True, help="Bundle reference to describe.")
@click.option(
    "-o",
    "--output-type",
    "output_type",
    default="text",
    show_default=True,
    help="text or yaml (imgpkg's formats).",
)
@bool_option("--layers", True, "List each image's layer digests (read from its manifest).")
@bool_option("--cosign-artifacts", True, "List each image's cosign signature (.sig), as imgpkg.")
@bool_option(
    "--sub-bundles",
    True,
    "Describe nested bundles' contents too (as imgpkg); =false lists them unexpanded.",
)
@registry_options()
def describe_command(**kwargs: Any) -> None:
    """Describe a bundle's images and nested bundles, as imgpkg describe."""
    from lockresolve.bundle.commands.describe import (
        describe_bundle,
        description_text,
        description_yaml,
    )

    settings = settings_from_kwargs(kwargs)
    if kwargs["output_type"] not in ("text", "yaml"):
        _fail("--output-type can only have the following values [text, yaml]")
    desc = _run(
        settings,
        lambda client: describe_bundle(
            client,
            kwargs["bundle"],
            layers=kwargs["layers"],
            cosign_artifacts=kwargs["cosign_artifacts"],
            sub_bundles=kwargs["sub_bundles"],
        ),
    )
    text = description_yaml(desc) if kwargs["output_type"] == "yaml" else description_text(desc)
    click.echo(text, nl=False)


# --- tag ---------------------------------------------------------------------


@click.group("tag")
def tag_group() -> None:
    """List and resolve tags, as imgpkg tag."""


@tag_group.command("list")
@click.option("-i", "--image", required=True, help="Repository (any tag is ignored).")
@click.option("--digests", is_flag=True, help="Show each tag's digest.")
@click.option("--imgpkg-internal-tags", "internal", is_flag=True, help="Show *.imgpkg tags.")
@registry_options()
def tag_list_command(**kwargs: Any) -> None:
    """List the tags of a repository."""
    from lockresolve.bundle.commands.tags import format_tag_table, list_tags

    settings = settings_from_kwargs(kwargs)
    tags = _run(
        settings,
        lambda client: list_tags(
            client, kwargs["image"], digests=kwargs["digests"], internal=kwargs["internal"]
        ),
    )
    click.echo(format_tag_table(tags, digests=kwargs["digests"]), nl=False)
    click.echo("")
    click.echo("Succeeded")


tag_group.add_command(tag_list_command, "ls")


@tag_group.command("resolve")
@click.option("-i", "--image", required=True, help="Image reference to resolve.")
@registry_options()
def tag_resolve_command(**kwargs: Any) -> None:
    """Print the digest reference of an image."""
    from lockresolve.bundle.commands.tags import resolve_tag

    settings = settings_from_kwargs(kwargs)
    click.echo(_run(settings, lambda client: resolve_tag(client, kwargs["image"])))
    click.echo("Succeeded")


# --- copy --------------------------------------------------------------------


@click.command("copy")
@click.option("-b", "--bundle", help="Bundle to copy, with every image it locks.")
@click.option("-i", "--image", help="Image or index to copy.")
@click.option("--lock", type=click.Path(dir_okay=False), help="BundleLock or ImagesLock to copy.")
@click.option("--tar", "tar_src", type=click.Path(dir_okay=False), help="imgpkg tar to copy from.")
@click.option(
    "--oci-layout", "layout_src", type=click.Path(file_okay=False), help="OCI layout to copy from."
)
@click.option("--to-repo", help="Destination repository for every item.")
@click.option("--to-tar", type=click.Path(dir_okay=False), help="Write imgpkg's tar format here.")
@click.option(
    "--to-oci-layout", type=click.Path(file_okay=False), help="Write an OCI image layout here."
)
@click.option(
    "--lock-output",
    type=click.Path(dir_okay=False),
    help="Write a BundleLock (bundle) or ImagesLock (images) of the copy.",
)
@click.option("--repo-based-tags", is_flag=True, help="Tag items <repo-path>-sha256-<hex>.imgpkg.")
@bool_option(
    "--cosign-signatures",
    False,
    "Also copy each item's cosign signature (sha256-<hex>.sig), as imgpkg, and its "
    "attestations and SBOMs (.att, .sbom).",
)
@bool_option(
    "--referrers",
    False,
    "Also copy each item's OCI 1.1 referrers (the referrers API where offered, and the "
    "sha256-<hex> fallback tag's index).",
)
@click.option("--resume", is_flag=True, help="With --to-tar: reuse valid blobs of an earlier tar.")
@registry_options()
def copy_command(**kwargs: Any) -> None:
    """Copy a bundle, image or lock between registries, tars and OCI layouts, as imgpkg copy."""
    from lockresolve.bundle.commands.copy import CopySource, copy
    from lockresolve.bundle.progress import Progress

    concurrency = kwargs["concurrency"]
    settings = settings_from_kwargs(kwargs)
    source = CopySource(
        bundle=kwargs["bundle"],
        image=kwargs["image"],
        lock=kwargs["lock"],
        tar=kwargs["tar_src"],
        oci_layout=kwargs["layout_src"],
    )
    source.check()

    async def run(client: RegistryClient) -> None:
        with Progress("copy") as progress:
            await copy(
                client,
                source,
                to_repo=kwargs["to_repo"],
                to_tar=kwargs["to_tar"],
                to_oci_layout=kwargs["to_oci_layout"],
                lock_output=kwargs["lock_output"],
                repo_based_tags=kwargs["repo_based_tags"],
                resume=kwargs["resume"],
                cosign_signatures=kwargs["cosign_signatures"],
                referrers=kwargs["referrers"],
                concurrency=concurrency,
                on_line=click.echo,
                progress=progress,
            )

    _run(settings, run)
    click.echo("")
    click.echo("Succeeded")
