"""The exception hierarchy shared by every xmr package (torch-free, importable everywhere).

Raised where the fault is known; translated once at the edge (HTTP problem+json in the
service, a one-line message and exit code 2 in the CLI: every ``XmrError`` is a user error,
a fault in what was given to xmr, not a bug in xmr).
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


class ConfigError(XmrError):
    """A model config, or a registered name it uses (model, encoder, loss), does not exist or is malformed."""


class CheckpointError(XmrError):
    """A trained run folder has no checkpoint, or its ``last.pt`` cannot be read or does not fit its config."""


class DataError(XmrError):
    """A training/evaluation corpus is missing, malformed, or has nothing to learn from (an empty split)."""


class ExportError(XmrError):
    """An exported ONNX graph disagrees with the torch model it was exported from."""


class SettingsError(XmrError):
    """An ``XMR_*`` environment variable or a command-line option has a value its settings refuse."""


class MissingExtra(XmrError):
    """A command needs an optional dependency group (``pip install 'xmr[train]'``) that is not installed."""


class NotFound(XmrError):
    """A named item or collection does not exist."""


class NotReady(XmrError):
    """No bundle is loaded yet."""


class NotSupported(XmrError):
    """The live bundle cannot answer this kind of request (e.g. moments from a bundle without a moment head)."""
