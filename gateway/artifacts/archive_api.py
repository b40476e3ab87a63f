"""`GET <artifacts prefix>/archive/<folder>?format=zip|tar.gz`: a whole folder as one download.

Everything that can be refused is refused before the first byte, as a JSON error: an unknown
format, an invalid path, a folder that does not exist or is empty, a path that is a file, a folder
of more entries than `--max-archive-entries` (counted from listings first, so a folder that would
make an enormous archive costs listings, never a byte of the archive). Once the
archive streams, a storage failure closes the connection, so the client holds an archive without
its end (no zip central directory, no gzip trailer) that every extractor rejects, never one that
looks whole but lacks files.
"""

from __future__ import annotations

import contextlib

from aiohttp import web

from gateway.artifacts.api import url_path
from gateway.artifacts.archive import FORMATS, ArchiveFormat, FolderArchive, TooManyEntries, count_entries
from gateway.artifacts.downloads import abort_mid_body, content_disposition
from gateway.http.access import Access, add_route
from gateway.http.app_keys import SETTINGS_KEY
from gateway.http.errors import ApiError
from gateway.http.prefixes import ARTIFACTS_PREFIXES
from gateway.http.request_keys import BYTES_OUT
from gateway.http.request_values import ANY_PATH, query_params, repository_of
from gateway.logs import audit
from gateway.metrics import metrics, transfer
from repositories import ROOT, ArtifactPath, ArtifactRepository
from repositories.errors import Conflict, NotFound, RepositoryError

DEFAULT_FORMAT = "zip"


def archive_format(request: web.Request) -> ArchiveFormat:
    name = query_params(request).get("format", DEFAULT_FORMAT)
    if name not in FORMATS:
        allowed = " or ".join(f"format={known}" for known in FORMATS)
        raise ApiError.invalid(f"Unknown archive format '{name}': use {allowed}")
    return FORMATS[name]


def archive_folder(request: web.Request) -> ArtifactPath:
    """The folder named after `archive/` in the URL; the root for `.../archive` and `.../archive/`."""
    if request.rel_url.raw_path in {f"{prefix}/archive" for prefix in ARTIFACTS_PREFIXES}:
        return ROOT
    return url_path(request, marker="archive", allow_trailing_slash=True)


async def nothing_to_archive(repository: ArtifactRepository, folder: ArtifactPath) -> ApiError:
    """Why an empty listing of `folder` cannot be archived: it is a file (400), or there is nothing (404)."""
    if folder.is_root:
        return ApiError(404, "RESOURCE_DOES_NOT_EXIST", "Nothing to archive: the artifact root is empty")
    try:
        await repository.head(folder)
    except (NotFound, Conflict):  # Conflict: an empty directory on local disk
        return ApiError(
            404,
            "RESOURCE_DOES_NOT_EXIST",
            f"Nothing to archive at '{folder}': no such folder, or it is empty",
        )
    return ApiError.invalid(
        f"'{folder}' is a file, not a folder: download it directly with GET {ARTIFACTS_PREFIXES[0]}/artifacts/{folder}"
    )


async def get_archive(request: web.Request) -> web.StreamResponse:
    chosen = archive_format(request)
    folder = archive_folder(request)
    repository = repository_of(request)
    limit = request.app[SETTINGS_KEY].max_archive_entries
    if limit and await count_entries(repository, folder, limit) > limit:
        raise ApiError.invalid(TooManyEntries(folder, limit).message)
    # Closed however the archive ends (the client gone, a storage error): a listing may hold a connection.
    async with contextlib.aclosing(repository.list(folder)) as listing:
        first = await anext(listing, None)
        if first is None:
            raise await nothing_to_archive(repository, folder)
        archive = FolderArchive(repository, folder, chosen, first, listing, limit)
        response = web.StreamResponse(
            headers={
                "Content-Type": chosen.content_type,
                "Content-Disposition": content_disposition(archive.file_name),
                "X-Content-Type-Options": "nosniff",
            }
        )  # no Content-Length: the size is known only at the end, so HTTP/1.1 chunks the body
        complete = False
        with transfer(metrics().downloads_in_flight):
            await response.prepare(request)
            request[BYTES_OUT] = 0
            try:
                async with contextlib.aclosing(archive.chunks()) as chunks:  # closes the open download at once on error
                    async for chunk in chunks:
                        await response.write(chunk)
                        request[BYTES_OUT] += len(chunk)
                await response.write_eof()
                complete = True
            except RepositoryError as exc:
                abort_mid_body(request, exc)
            except BaseException:
                # Whatever else broke (the client left, a bug), the client must not see a finished body.
                if request.transport is not None:
                    request.transport.close()
                raise
            finally:
                audit(
                    request,
                    "archive",
                    str(folder),
                    format=chosen.name,
                    files=archive.files,
                    size=request[BYTES_OUT],
                    complete=complete,
                )
        return response


def add_routes(app: web.Application) -> None:
    """Register the archive route under both artifact API prefixes."""
    for prefix in ARTIFACTS_PREFIXES:
        add_route(app, "GET", f"{prefix}/archive", get_archive, Access.READ)
        add_route(app, "GET", f"{prefix}/archive/{ANY_PATH}", get_archive, Access.READ)
