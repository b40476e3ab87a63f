"""Local-disk repository: staging file + atomic rename for writes, sendfile-ready reads.

Every blocking filesystem call runs in the event loop's default executor (through aiofiles, or
`OrderedOffload` for a streamed body), batched so that one hand-over moves half a MiB or more, never
one per network chunk. A large upload nobody asked a digest of is hashed after its answer
(`DeferredDigests`); a small file is read whole when opened for a download.

`repository` holds the class; each other module one concern: `staging` and `streaming` (an upload on
its way in), `commits` (into place) and `flushes` (its directories made durable at once), `reads`
and `listing`, `multipart`, `sweep`, `deletes`, `metadata` (ObjectInfo, the sha256 xattr),
`fs_paths`, `threads` and `os_errors`.
"""

from repositories.local.repository import LocalRepository

__all__ = ["LocalRepository"]
