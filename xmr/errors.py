"""The exception hierarchy shared by every xmr package (torch-free, importable everywhere).

Raised where the fault is known; translated once at the edge (HTTP problem+json in the
service, a one-line message and exit code in the CLI).
"""

from __future__ import annotations


class XmrError(Exception):
    """Base class: the message names the problem and the thing it concerns."""


class BundleError(XmrError):
    """An index bundle is missing, incomplete, corrupt (checksum mismatch) or of an unknown schema."""


class MediaError(XmrError):
    """A media file is missing, unreadable or has no decodable frames."""


class ManifestError(XmrError):
    """An input manifest is missing or malformed."""


class CheckpointError(XmrError):
    """A trained run folder has no checkpoint, or its ``last.pt`` cannot be read or does not fit its config."""


class InvalidRequest(XmrError):
    """A request is well-formed JSON but asks for something that cannot be served."""


class NotFound(XmrError):
    """A named item or collection does not exist."""


class NotReady(XmrError):
    """No bundle is loaded yet."""
