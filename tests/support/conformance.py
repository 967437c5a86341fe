"""Replay the recorded conformance cases (``tests/fixtures/conformance``) against a test registry.

Cases live in ``tests/fixtures/conformance/{resolve,bundle,copy}/<name>/`` (their origin is
in ``tests/fixtures/README.md``). This module lists and loads them, seeds a
registry with a case's ``seed.json`` byte for byte, and materialises inputs with
``${REGISTRY}`` substituted.

Seeding uses a plain synchronous httpx client (with
:class:`~tests.support.registry.ChallengeAuth` for the auth variants), deliberately
independent of lockresolve's own registry client. It is idempotent: a case is seeded once
per registry process.

::

    @pytest.mark.parametrize("case", case_params("resolve"))
    def test_resolve(case, registry, tmp_path):
        seed_case(registry, case)
        inputs = case.copy_input(tmp_path / "in", registry.host)
        expected = case.expected_text("images.yml", registry.host)
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

from .registry import Registry

__all__ = [
    "CaseKind",
    "ConformanceCase",
    "SeedError",
    "SeedItem",
    "case_params",
    "conformance_dir",
    "copy_tree_substituted",
    "corpus_dir",
    "get_case",
    "list_cases",
    "materialize_tree",
    "push_blob",
    "push_manifest",
    "seed_case",
    "seed_items",
    "substitute",
]

CaseKind = Literal["resolve", "bundle", "copy"]
REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures"


def conformance_dir() -> Path:
    """The recorded kbld and imgpkg cases the project carries."""
    return FIXTURES / "conformance"


def corpus_dir() -> Path:
    """The real-world manifests the project carries (``INDEX.md`` lists their sources)."""
    return FIXTURES / "corpus"


def substitute(text: str, registry: str, *, input_dir: Path | str | None = None) -> str:
    """Replace ``${REGISTRY}`` (a ``host:port``) and, when given, ``${INPUT}``."""
    text = text.replace("${REGISTRY}", registry)
    if input_dir is not None:
        text = text.replace("${INPUT}", str(input_dir))
    return text


@dataclass(frozen=True)
class SeedItem:
    """One entry of a ``seed.json``."""

    put: Literal["blob", "manifest"]
    repo: str
    digest: str
    data: bytes
    reference: str | None = None
    media_type: str | None = None

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SeedItem:
        put = obj["put"]
        if put not in ("blob", "manifest"):
            raise ValueError(f"unknown seed item kind {put!r}")
        return cls(
            put=put,
            repo=obj["repo"],
            digest=obj["digest"],
            data=base64.b64decode(obj["data_base64"]),
            reference=obj.get("reference"),
            media_type=obj.get("media_type"),
        )


@dataclass(frozen=True)
class ConformanceCase:
    """One recorded case folder."""

    kind: CaseKind
    name: str
    path: Path

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.name}"

    def __str__(self) -> str:
        return self.id

    @cached_property
    def data(self) -> dict[str, Any]:
        """``case.json``."""
        loaded: dict[str, Any] = json.loads((self.path / "case.json").read_text())
        return loaded

    @property
    def description(self) -> str:
        return str(self.data.get("description", ""))

    # -- seed ---------------------------------------------------------------------------

    @property
    def seed_path(self) -> Path:
        return self.path / "seed.json"

    @property
    def has_seed(self) -> bool:
        return self.seed_path.is_file()

    def seed_items(self) -> list[SeedItem]:
        """``seed.json`` as items, in order ([] when the case has no seed)."""
        if not self.has_seed:
            return []
        return [SeedItem.from_json(o) for o in json.loads(self.seed_path.read_text())]

    # -- resolve cases ------------------------------------------------------------------

    @property
    def input_dir(self) -> Path:
        return self.path / "input"

    @property
    def expected_dir(self) -> Path:
        return self.path / "expected"

    @property
    def inputs(self) -> list[str]:
        """``case.json`` ``inputs``: paths under ``input/``, each passed as ``-f``."""
        return [str(x) for x in self.data.get("inputs", [])]

    @property
    def exit_code(self) -> int:
        return int(self.data.get("exit_code", 0))

    @property
    def outputs(self) -> list[str]:
        return [str(x) for x in self.data.get("outputs", [])]

    def copy_input(self, dest: Path, registry: str) -> Path:
        """Copy ``input/`` to ``dest`` with ``${REGISTRY}`` substituted in every text file;
        returns ``dest``."""
        return copy_tree_substituted(self.input_dir, dest, registry)

    def input_paths(self, dest: Path) -> list[Path]:
        """The ``inputs`` as paths inside a copy made by :meth:`copy_input` at ``dest``."""
        return [dest / p for p in self.inputs]

    def args(self, out: Path, registry: str) -> list[str]:
        """``case.json`` ``args`` with ``{out}`` and ``${REGISTRY}`` filled in."""
        return [
            substitute(str(a), registry).replace("{out}", str(out))
            for a in self.data.get("args", [])
        ]

    def cli_args(self, input_copy: Path, out: Path, registry: str) -> list[str]:
        """The resolve arguments: ``-f`` per input (inside ``input_copy``), then the
        case's args."""
        argv: list[str] = []
        for p in self.input_paths(input_copy):
            argv += ["-f", str(p)]
        return argv + self.args(out, registry)

    def expected_path(self, name: str) -> Path:
        return self.expected_dir / name

    def has_expected(self, name: str) -> bool:
        return self.expected_path(name).is_file()

    def expected_text(
        self, name: str, registry: str, *, input_dir: Path | str | None = None
    ) -> str:
        """An ``expected/`` file with ``${REGISTRY}`` (and ``${INPUT}``) substituted."""
        text = self.expected_path(name).read_text(encoding="utf-8")
        return substitute(text, registry, input_dir=input_dir)

    # -- bundle / copy cases ------------------------------------------------------------

    @cached_property
    def expected(self) -> dict[str, Any]:
        """``expected.json`` (bundle and copy cases), not substituted."""
        loaded: dict[str, Any] = json.loads((self.path / "expected.json").read_text())
        return loaded

    def expected_substituted(self, registry: str) -> Any:
        """``expected.json`` with ``${REGISTRY}`` substituted in every string."""
        return json.loads(substitute((self.path / "expected.json").read_text(), registry))

    def make_tree(self, dest: Path, registry: str | None = None) -> Path:
        """Create the case's files under ``dest``: ``tree.json`` (bundle cases; modes
        applied, empty folders created) or ``bundle-tree.json`` (copy cases: path -> text,
        ``${REGISTRY}`` substituted, so ``registry`` is required)."""
        if (self.path / "tree.json").is_file():
            entries = json.loads((self.path / "tree.json").read_text())
            return materialize_tree(entries, dest)
        tree = json.loads((self.path / "bundle-tree.json").read_text())
        if registry is None:
            raise ValueError("bundle-tree.json needs the registry host to substitute")
        dest.mkdir(parents=True, exist_ok=True)
        for rel, text in tree.items():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(substitute(text, registry), encoding="utf-8")
        return dest


def materialize_tree(entries: Iterable[dict[str, Any]], dest: Path) -> Path:
    """Create files and folders from ``tree.json`` entries (``path``, ``type``, ``mode``,
    ``data_base64``); modes are applied last, deepest first, so read-only folders work."""
    dest.mkdir(parents=True, exist_ok=True)
    modes: list[tuple[Path, int]] = []
    for entry in entries:
        target = dest / entry["path"]
        if entry.get("type", "file") == "dir":
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(base64.b64decode(entry.get("data_base64", "")))
        if "mode" in entry:
            modes.append((target, int(entry["mode"])))
    for target, mode in sorted(modes, key=lambda x: len(x[0].parts), reverse=True):
        target.chmod(mode)
    return dest


def copy_tree_substituted(src: Path, dest: Path, registry: str) -> Path:
    """Copy ``src`` to ``dest``, substituting ``${REGISTRY}`` in files that are UTF-8."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.rglob("*")):
        target = dest / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            shutil.copyfile(path, target)
            continue
        if "${REGISTRY}" in text:
            target.write_bytes(substitute(text, registry).encode("utf-8"))
        else:
            target.write_bytes(raw)
    return dest


def list_cases(kind: CaseKind) -> list[ConformanceCase]:
    """Every case folder of ``kind``, sorted by name ([] when the folder is absent)."""
    base = conformance_dir() / kind
    if not base.is_dir():
        return []
    return [
        ConformanceCase(kind=kind, name=p.name, path=p)
        for p in sorted(base.iterdir())
        if (p / "case.json").is_file()
    ]


def get_case(kind: CaseKind, name: str) -> ConformanceCase:
    """A case by name, or by unique name prefix (``get_case("resolve", "r01")``)."""
    cases = list_cases(kind)
    for case in cases:
        if case.name == name:
            return case
    matches = [c for c in cases if c.name.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    raise LookupError(f"no single conformance case {kind}/{name} in {conformance_dir()}")


def case_params(kind: CaseKind) -> list[Any]:
    """``pytest.param`` per case of ``kind`` (id = case name), for ``parametrize``.

    No case found is an error at collection, never a silent skip.
    """
    cases = list_cases(kind)
    if not cases:
        raise LookupError(f"no conformance cases in {conformance_dir() / kind}")
    return [pytest.param(c, id=c.name) for c in cases]


# --------------------------------------------------------------------------------------
# Seeding


class SeedError(AssertionError):
    """The registry did not store a seed item as recorded."""


def _check(response: httpx.Response, expected: set[int], what: str) -> None:
    if response.status_code not in expected:
        raise SeedError(
            f"{what}: {response.request.method} {response.request.url.path} -> "
            f"{response.status_code} {response.text[:500]}"
        )


def push_blob(client: httpx.Client, repo: str, data: bytes, digest: str | None = None) -> str:
    """Monolithic upload: ``POST /v2/<repo>/blobs/uploads/``, then ``PUT <location>&digest=``.

    ``client`` has the registry as ``base_url`` (e.g. ``Registry.client()``). Returns the
    digest; raises :class:`SeedError` unless the registry confirms it.
    """
    digest = digest or "sha256:" + hashlib.sha256(data).hexdigest()
    start = client.post(f"/v2/{repo}/blobs/uploads/")
    _check(start, {202}, f"start upload to {repo}")
    location = start.headers.get("Location")
    if not location:
        raise SeedError(f"start upload to {repo}: no Location")
    url = start.url.join(location).copy_add_param("digest", digest)
    put = client.put(url, content=data, headers={"Content-Type": "application/octet-stream"})
    _check(put, {201}, f"blob {digest} to {repo}")
    got = put.headers.get("Docker-Content-Digest")
    if got != digest:
        raise SeedError(f"blob {digest} to {repo}: registry says {got}")
    return digest


def push_manifest(
    client: httpx.Client, repo: str, reference: str, media_type: str, data: bytes
) -> str:
    """``PUT /v2/<repo>/manifests/<reference>`` with ``media_type``; returns the
    ``Docker-Content-Digest`` the registry answered."""
    put = client.put(
        f"/v2/{repo}/manifests/{reference}",
        content=data,
        headers={"Content-Type": media_type},
    )
    _check(put, {201}, f"manifest {repo}:{reference}")
    got = put.headers.get("Docker-Content-Digest")
    if not got:
        raise SeedError(f"manifest {repo}:{reference}: no Docker-Content-Digest")
    return str(got)


def seed_items(registry: Registry, items: Iterable[SeedItem], *, what: str = "seed") -> None:
    """Upload ``items`` in order, exactly; verify every digest the registry returns.

    Consecutive blobs are uploaded concurrently (they are independent); manifests go one
    by one, in order, after the blobs listed before them.
    """
    items = list(items)
    for item in items:
        computed = "sha256:" + hashlib.sha256(item.data).hexdigest()
        if computed != item.digest:
            raise SeedError(f"{what}: {item.repo} {item.digest}: data hashes to {computed}")
    with registry.client(limits=httpx.Limits(max_connections=8)) as client:
        pending: list[SeedItem] = []

        def flush() -> None:
            if len(pending) == 1:
                push_blob(client, pending[0].repo, pending[0].data, pending[0].digest)
            elif pending:
                with ThreadPoolExecutor(max_workers=8) as pool:
                    futures = [
                        pool.submit(push_blob, client, b.repo, b.data, b.digest) for b in pending
                    ]
                    for future in futures:
                        future.result()
            pending.clear()

        for item in items:
            if item.put == "blob":
                pending.append(item)
                continue
            flush()
            if item.reference is None or item.media_type is None:
                raise SeedError(f"{what}: manifest item without reference or media_type")
            got = push_manifest(client, item.repo, item.reference, item.media_type, item.data)
            if got != item.digest:
                raise SeedError(
                    f"{what}: manifest {item.repo}:{item.reference}: registry says {got}, "
                    f"recorded {item.digest}"
                )
        flush()


_seeded: set[tuple[str, str]] = set()
_seed_lock = threading.Lock()


def seed_case(registry: Registry, case: ConformanceCase, *, force: bool = False) -> None:
    """Seed ``case`` into ``registry`` once per registry process (cached by
    ``registry.instance_id``; ``force`` seeds again)."""
    key = (registry.instance_id, case.id)
    with _seed_lock:
        if key in _seeded and not force:
            return
        seed_items(registry, case.seed_items(), what=case.id)
        _seeded.add(key)
