"""Deprecated alias of :mod:`nortonkit.transport`, kept for one release.

``nortonkit.sinkhorn`` was both this module and the function :func:`nortonkit.sinkhorn`; the
module is now :mod:`nortonkit.transport`. Importing this path warns and re-exports it. Note
that importing it binds the package attribute ``nortonkit.sinkhorn`` to this module, as any
submodule import does: call ``nortonkit.transport.sinkhorn`` to be unambiguous.
"""

from __future__ import annotations

import warnings

from .transport import *  # noqa: F403
from .transport import __all__  # noqa: F401

warnings.warn(
    "nortonkit.sinkhorn is deprecated and will be removed in the next release: import "
    "nortonkit.transport instead",
    DeprecationWarning,
    stacklevel=2,
)
