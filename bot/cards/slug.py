"""Character ids derived from names, since cards and many TOML files carry no id."""

from __future__ import annotations

import hashlib
import re
import unicodedata

MAX_ID_LENGTH = 64
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(name: str) -> str:
    """Turn a display name into an id matching ``^[a-z0-9][a-z0-9_-]*$`` (at most 64 chars).

    Accents are folded to ASCII; a name with no ASCII letters or digits at all (say, in Japanese)
    gets ``character-`` plus a short hash so that different names still get different ids.
    """
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = _NOT_SLUG.sub("-", folded.lower()).strip("-")
    slug = slug[:MAX_ID_LENGTH].rstrip("-")
    if slug:
        return slug
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"character-{digest}"
