"""kbld's approximate repository of a reference, for ``imageRepo`` matchers and overrides.

:func:`url_repo` is deliberately not normalised (``nginx:1`` has repository
``nginx``, not ``index.docker.io/library/nginx``) and accepts any text, so it
is not :class:`lockresolve.reference.Reference`'s job; everything that needs a
real reference (digest references of a lock included) goes through ``Reference``.
"""

from __future__ import annotations

import re

__all__ = ["url_repo"]

# kbld pkg/kbld/image/matcher.go: \A(.+?)(:[A-Za-z0-9_\-\.]+)?(@.+:.+)?\z
_APPROXIMATE_REF = re.compile(r"(.+?)(:[A-Za-z0-9_\-\.]+)?(@.+:.+)?")


def url_repo(url: str) -> tuple[str, bool]:
    """kbld's ``URLRepo``: the part before ``:tag`` / ``@digest``, and whether it matched."""
    m = _APPROXIMATE_REF.fullmatch(url)
    if m is None:
        return url, False
    return m.group(1), True
