"""Source paths as users of the service see them: relative to the folder that was ingested.

A document's uri is the absolute path it was read from (its identity in the store). The
service does not show the server's folders to its users: ``/srv/acme/kb-src/hr/leave.md``,
ingested as ``/srv/acme/kb-src``, is shown as ``kb-src/hr/leave.md``; an uploaded file as its
name. URLs and other non-path uris are shown as they are.

Example:
    >>> shown_path("/srv/acme/kb-src/hr/leave.md", ["/srv/acme/kb-src"])
    'kb-src/hr/leave.md'
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

UPLOADS = "uploads"  # the workspace folder files uploaded through the API land in


def shown_path(uri: str, roots: Sequence[str]) -> str:
    """``uri`` relative to the longest ingested root holding it (named by that root's last
    folder; an upload by its own name), else its file name; non-paths unchanged."""
    if not uri.startswith("/"):
        return uri
    for root in sorted((r.rstrip("/") for r in roots), key=len, reverse=True):
        rest = uri[len(root) :]
        if root and uri.startswith(root) and (not rest or rest[0] in "/!#"):
            name = posixpath.basename(root)
            if posixpath.basename(posixpath.dirname(root)) == UPLOADS:  # uploads/<batch>/
                return rest.lstrip("/") or name
            return name + rest
    return posixpath.basename(uri)
