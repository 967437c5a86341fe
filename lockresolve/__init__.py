"""lockresolve: resolve image references to digests, write kbld/imgpkg locks, move bundles."""

from lockresolve._version import __version__

__all__ = ["__version__"]
