"""A local repository that counts listings begun and not yet finished: a caller that stops reading
a listing early must close it, since on S3 or Azure an open listing may hold a connection."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from repositories import ArtifactPath, ListEntry
from repositories.local import LocalRepository


class CountingListings(LocalRepository):
    unfinished = 0
    """Listings begun and neither read to the end nor closed."""

    async def list(self, path: ArtifactPath, *, start_after: str | None = None) -> AsyncGenerator[ListEntry, None]:
        self.unfinished += 1
        try:
            async for entry in super().list(path, start_after=start_after):
                yield entry
        finally:
            self.unfinished -= 1
