"""Local-disk repository: staging file + atomic rename for writes, sendfile-ready reads."""

from repositories.local.repository import LocalRepository

__all__ = ["LocalRepository"]
