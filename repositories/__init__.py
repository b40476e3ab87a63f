"""Storage adapters behind one async interface. No HTTP in here."""

from repositories.base import ArtifactRepository, Download, ListEntry, ObjectInfo
from repositories.digests import ExpectedDigests
from repositories.factory import open_repository
from repositories.paths import ROOT, ArtifactPath

__all__ = [
    "ROOT",
    "ArtifactPath",
    "ArtifactRepository",
    "Download",
    "ExpectedDigests",
    "ListEntry",
    "ObjectInfo",
    "open_repository",
]
