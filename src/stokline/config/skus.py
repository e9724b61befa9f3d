"""The SKU match rules of mapping files, as one key function.

It lives with the configuration because the loader needs it (an override given twice under the
file's match rule is an error) and the translation code uses the same function, so the two can
never disagree about which SKUs are the same.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

_SEPARATORS = re.compile(r"[\s\-_./]+")


def sku_key(sku: str, match: str) -> str:
    """The form of ``sku`` under which two SKUs are the same for the given match rule."""
    if match == "exact":
        return sku
    key = sku.strip().casefold()
    if match == "normalised":
        key = _SEPARATORS.sub("", key)
    return key


def never_synced(sku: str, patterns: Iterable[str]) -> bool:
    """True when ``sku`` is one of the mapping's ``never_sync`` SKUs or patterns (any case)."""
    folded = sku.strip().casefold()
    return any(fnmatch.fnmatchcase(folded, p.casefold()) for p in patterns)
