"""The typed artifact path: what it accepts, what it refuses, and that it never leaves its root."""

from __future__ import annotations

import os
import posixpath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repositories import ArtifactPath
from repositories.errors import InvalidPath


@pytest.mark.parametrize(
    "text",
    [
        "a.txt",
        "dir/sub/file.bin",
        "model..v2.bin",
        "a b;c.txt",
        "日本/語.txt",
        "...x",
        "x..",
        ".hidden",
        "100%.txt",
        "a+b=c&d.txt",
        "emoji-🙂.txt",
    ],
)
def test_accepts_ordinary_names(text: str) -> None:
    path = ArtifactPath.parse(text)
    assert str(path) == text
    assert path.parts == tuple(text.split("/"))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("..", "'..' segment"),
        ("a/../b", "'..' segment"),
        (".", "'.' segment"),
        ("a/./b", "'.' segment"),
        ("...", "'...' segment"),
        ("a//b", "empty path segment"),
        ("a/", "empty path segment"),
        ("/etc/passwd", "absolute path"),
        ("C:/x", "absolute path"),
        ("c:x", "absolute path"),
        ("\\\\srv\\share", "absolute path"),
        ("a\\b", "backslash"),
        ("a\x00b", "NUL"),
        ("a\nb", "control"),
        ("a\x7fb", "control"),
        ("file:///etc/passwd", "URI"),
        ("a#b", "'#'"),
        ("a?b", "'#' or '?'"),
        ("..;/x", "';' parameter"),
        ("a/..;x/b", "';' parameter"),
        ("%2e%2e/x", "percent-escape"),
        ("a%2Fb", "percent-escape"),
        ("x" * 256, "longer than 255"),
        ("a/" * 600 + "b", "longer than 1024"),
    ],
)
def test_refuses_unsafe_text_and_says_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidPath) as caught:
        ArtifactPath.parse(text)
    assert reason in caught.value.message


def test_trailing_slash_only_when_allowed() -> None:
    assert ArtifactPath.parse("dir/", allow_trailing_slash=True) == ArtifactPath.parse("dir")
    assert ArtifactPath.parse("", allow_trailing_slash=True).is_root
    with pytest.raises(InvalidPath):
        ArtifactPath.parse("dir//", allow_trailing_slash=True)


def test_child_and_parent() -> None:
    path = ArtifactPath.parse("a/b")
    assert path.child("c").parts == ("a", "b", "c")
    assert path.parent == ArtifactPath.parse("a")
    assert path.name == "b"
    for bad in ("..", "x/y", ""):
        with pytest.raises(InvalidPath):
            path.child(bad)


@settings(max_examples=2000, deadline=None)
@given(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=80)
    | st.lists(st.sampled_from(["..", ".", "", "a", "%2e", "\\", "/", ";", "C:", "file:", "#"]), max_size=8).map(
        "/".join
    )
)
def test_any_accepted_path_stays_under_its_root(text: str) -> None:
    """Whatever text is accepted, joining it under a root and normalising never leaves that root."""
    try:
        path = ArtifactPath.parse(text)
    except InvalidPath:
        return
    root = "/srv/artifacts"
    joined = posixpath.normpath(posixpath.join(root, *path.parts)) if path.parts else root
    assert joined == root or joined.startswith(root + "/")
    assert os.path.normpath(os.path.join(root, str(path))) == joined
    assert ArtifactPath.parse(str(path)) == path  # the text form parses back to the same path
