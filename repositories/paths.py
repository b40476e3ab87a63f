"""The typed artifact path: the only kind of path a repository accepts.

A path is decoded exactly once at the HTTP edge and then parsed here. Parsing is strict so that
a validated path can be joined under any root (a directory, a bucket prefix, a container prefix)
and still name something inside that root, whatever the backend does with the text afterwards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from repositories.errors import InvalidPath

# A segment that still looks percent-encoded after the one decode is ambiguous: MLflow's client
# decodes listed names again (up to ten times), so `%2e%2e` would become `..` on its side.
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_DRIVE = re.compile(r"^[A-Za-z]:")
_MAX_SEGMENT_BYTES = 255
_MAX_PATH_BYTES = 1024


def _segment_problem(segment: str) -> str | None:
    """Return why `segment` is not allowed, or None when it is fine."""
    if segment == "":
        return "empty path segment ('//' or a leading or trailing '/')"
    if set(segment) == {"."}:
        return f"'{segment}' segment"
    head, sep, _ = segment.partition(";")
    if sep and head and set(head) == {"."}:
        return "dot segment with a ';' parameter"
    if "\\" in segment:
        return "backslash"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in segment):
        return "control character"
    if "#" in segment or "?" in segment:
        return "'#' or '?' (MLflow clients treat them as URL delimiters)"
    if _PERCENT_ESCAPE.search(segment):
        return "percent-escape left after decoding (double-encoded path)"
    if len(segment.encode("utf-8")) > _MAX_SEGMENT_BYTES:
        return f"segment longer than {_MAX_SEGMENT_BYTES} bytes"
    return None


@dataclass(frozen=True, slots=True)
class ArtifactPath:
    """A validated, relative, '/'-separated artifact path. The empty path is the root."""

    parts: tuple[str, ...]

    @classmethod
    def parse(cls, text: str, *, allow_trailing_slash: bool = False) -> ArtifactPath:
        """Validate already-decoded `text`; raise `InvalidPath` naming the first problem."""
        if text == "":
            return ROOT
        if "\x00" in text:
            raise InvalidPath(text, "NUL character")
        if text.startswith("/") or _DRIVE.match(text) or text.startswith("\\"):
            raise InvalidPath(text, "absolute path")
        if text.lower().startswith("file:"):
            raise InvalidPath(text, "URI instead of a path")
        if len(text.encode("utf-8")) > _MAX_PATH_BYTES:
            raise InvalidPath(text, f"path longer than {_MAX_PATH_BYTES} bytes")
        body = text[:-1] if allow_trailing_slash and text.endswith("/") else text
        parts = tuple(body.split("/"))
        for segment in parts:
            problem = _segment_problem(segment)
            if problem is not None:
                raise InvalidPath(text, problem)
        return cls(parts)

    @property
    def is_root(self) -> bool:
        return not self.parts

    @property
    def name(self) -> str:
        """The last segment ('' for the root)."""
        return self.parts[-1] if self.parts else ""

    @property
    def parent(self) -> ArtifactPath:
        return ArtifactPath(self.parts[:-1])

    def child(self, name: str) -> ArtifactPath:
        """Append one segment, validated like any other."""
        problem = _segment_problem(name) if "/" not in name else "'/' in a name"
        if problem is not None:
            raise InvalidPath(name, problem)
        return ArtifactPath((*self.parts, name))

    def join(self, relative: ArtifactPath) -> ArtifactPath:
        """This path followed by `relative`; `InvalidPath` when the whole is longer than a path may be."""
        return ArtifactPath.parse("/".join(part for part in (str(self), str(relative)) if part))

    def __str__(self) -> str:
        return "/".join(self.parts)


ROOT = ArtifactPath(())
