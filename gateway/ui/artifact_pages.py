"""The artifact browser: a folder's tree and entries, a file's size and digest, previews, downloads.

Two entry points share one view: a run's artifacts (`/experiments/<id>/runs/<run>/artifacts/<path>`,
proxied runs only) and the whole destination (`/browse/<path>`, wherever artifacts are served).
The path after the route is taken from the raw URL and decoded once into an `ArtifactPath`, as the
artifact API does; a path cannot leave the run's folder or the destination.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import posixpath
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from gateway.artifacts.downloads import content_type, send_download
from gateway.http.app_keys import STORE_KEY
from gateway.http.errors import ApiError
from gateway.http.prefixes import ARTIFACTS_PREFIXES
from gateway.http.request_values import decode_once, parse_path, query_params, repository_of
from gateway.locations import LOCATIONS_KEY
from gateway.ui.previews import image_series, logged_table, series_view
from gateway.ui.rendering import page, render
from repositories import ArtifactPath, ArtifactRepository, ListEntry
from repositories.errors import Conflict, NotFound

PREVIEW_BYTES = 256 * 1024
"""How much of a file a preview shows; the download has the rest."""
CSV_PREVIEW_ROWS = 200
ENTRIES_PER_PAGE = 500
TREE_ENTRIES_PER_LEVEL = 200
LISTINGS_AT_ONCE = 8
"""Folders one page lists at a time: a path may be hundreds of levels deep (1,024 bytes)."""
IMAGE_EXTENSIONS = frozenset("png jpg jpeg gif webp bmp svg".split())
HTML_EXTENSIONS = frozenset(("html", "htm", "xhtml"))
"""Never shown here: a page from a run would run its scripts on this server's origin (and session)."""
DOWNLOAD_PREFIX = f"{ARTIFACTS_PREFIXES[0]}/artifacts/"
ARCHIVE_PREFIX = f"{ARTIFACTS_PREFIXES[0]}/archive/"


@dataclass(frozen=True, slots=True)
class Place:
    """Where a browser view is rooted: the stored folder, and the page URL that shows it."""

    root: ArtifactPath
    url: str
    """Page URL of `root`, without a trailing slash; `url_of` gives those of the paths below it."""
    label: str

    def url_of(self, relative: str) -> str:
        """Page URL of `relative` below the root ('' is the root itself)."""
        return f"{self.url}/{quote(relative)}" if relative else self.url


def _run_place(info: dict[str, Any], root: ArtifactPath) -> Place:
    return Place(root, f"/experiments/{info['experiment_id']}/runs/{info['run_id']}/artifacts", "artifacts")


def _raw_tail(request: web.Request) -> str:
    """What the route's `{path}` matched, decoded once from the raw URL ('' when the route has none).

    The router's own `match_info["path"]` is decoded already, so an encoded '/' would be a separator there.
    """
    if "path" not in request.match_info:
        return ""
    resource = request.match_info.route.resource
    assert resource is not None  # a matched route has one
    before = resource.canonical.count("/") - 1  # the route's segments before `/{path}`
    return decode_once(request.rel_url.raw_path.split("/", before + 1)[before + 1])


def download_url(path: ArtifactPath) -> str:
    return DOWNLOAD_PREFIX + quote(str(path), safe="/")


def archive_url(path: ArtifactPath, archive_format: str) -> str:
    return (
        ARCHIVE_PREFIX.rstrip("/")
        + ("/" + quote(str(path), safe="/") if str(path) else "")
        + f"?format={archive_format}"
    )


async def run_artifact_summary(request: web.Request, info: dict[str, Any]) -> dict[str, Any]:
    """The run page's artifact box: the top-level entries, or where the artifacts live instead."""
    root = request.app[LOCATIONS_KEY].browsable_root(info["artifact_uri"])
    if root is None:
        return {"served": False, "uri": info["artifact_uri"]}
    return {**await folder_summary(request, _run_place(info, root)), "uri": info["artifact_uri"]}


async def folder_summary(request: web.Request, place: Place) -> dict[str, Any]:
    """A box of `place`'s top-level entries, with links to browse them and to download them as a zip."""
    entries = await _children(repository_of(request), place.root, None, TREE_ENTRIES_PER_LEVEL)
    return {
        "served": True,
        "entries": [{"entry": e, "url": place.url_of(e.name)} for e in entries],
        "browse_url": place.url,
        "zip_url": archive_url(place.root, "zip") if entries else None,
    }


async def _children(
    repository: ArtifactRepository, path: ArtifactPath, after: str | None, limit: int
) -> list[ListEntry]:
    entries = []
    async with contextlib.aclosing(repository.list(path, start_after=after)) as listing:
        async for entry in listing:
            entries.append(entry)
            if len(entries) == limit:
                break
    return entries


async def _listed_at_once(
    repository: ArtifactRepository, listings: list[tuple[ArtifactPath, str | None, int]]
) -> list[list[ListEntry]]:
    """`_children` of each (folder, after, limit), run concurrently, at most `LISTINGS_AT_ONCE` at a time.

    The first failure cancels the others and is raised as itself (not as an ExceptionGroup). Each
    listing is started only when it has room, so none is left created but never run.
    """
    room = asyncio.Semaphore(LISTINGS_AT_ONCE)

    async def one(folder: ArtifactPath, after: str | None, limit: int) -> list[ListEntry]:
        async with room:
            return await _children(repository, folder, after, limit)

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(*listing)) for listing in listings]
    except BaseExceptionGroup as error:
        raise error.exceptions[0] from None
    return [task.result() for task in tasks]


def _tree(place: Place, segments: tuple[str, ...], levels: list[list[ListEntry]]) -> list[dict[str, Any]]:
    """The open branch of the tree, nested: `levels[depth]` lists the folder `segments[:depth]`, and the
    open folder of each level holds the next level as its `children` (drawn under it, not after its
    siblings). An open folder past a level's first entries is added at its end, so the branch never breaks."""
    children: list[dict[str, Any]] = []
    for depth in reversed(range(len(levels))):
        wanted = segments[depth] if depth < len(segments) else None
        items = []
        for entry in levels[depth]:
            opened = entry.name == wanted
            items.append(_tree_item(place, segments, depth, entry.name, entry.is_dir, children if opened else None))
        if wanted is not None and not any(item["open"] for item in items):
            items.append(_tree_item(place, segments, depth, wanted, True, children))
        children = items
    return children


def _tree_item(
    place: Place, segments: tuple[str, ...], depth: int, name: str, is_dir: bool, children: list[dict[str, Any]] | None
) -> dict[str, Any]:
    return {
        "name": name,
        "depth": depth,
        "is_dir": is_dir,
        "open": children is not None,
        "children": children or [],
        "url": place.url_of("/".join([*segments[:depth], name])),
    }


def _breadcrumbs(place: Place, relative: str) -> list[dict[str, str]]:
    crumbs = [{"name": place.label, "url": place.url}]
    segments = [s for s in relative.split("/") if s]
    for depth in range(len(segments)):
        crumbs.append({"name": segments[depth], "url": place.url_of("/".join(segments[: depth + 1]))})
    return crumbs


async def _preview(repository: ArtifactRepository, path: ArtifactPath, size: int) -> dict[str, Any]:
    """What the page shows of a file: an image, text (JSON pretty-printed), a CSV table, or nothing."""
    extension = posixpath.splitext(path.name)[1].lstrip(".").lower()
    if extension in IMAGE_EXTENSIONS:
        return {"kind": "image"}
    if extension in HTML_EXTENSIONS:
        return {"kind": "html"}
    kind = content_type(path.name)
    textual = kind.startswith("text/") or kind in ("application/json", "application/yaml", "application/x-yaml")
    if not textual:
        return {"kind": "none", "content_type": kind}
    chunks = []
    async with await repository.get(path) as download:
        async for chunk in download.iter_range(0, min(size, PREVIEW_BYTES)):
            chunks.append(chunk)
    data = b"".join(chunks)
    truncated = size > len(data)
    # A cut may split a character: drop the partial one rather than show a replacement mark.
    text = data.decode("utf-8", errors="ignore" if truncated else "replace")
    table = logged_table(text) if extension == "json" and not truncated else None
    if table is not None:
        rows = [table["columns"], *table["rows"][:CSV_PREVIEW_ROWS]]
        return {"kind": "table", "rows": rows, "more": len(table["rows"]) > CSV_PREVIEW_ROWS, "logged_table": True}
    if extension == "json" and not truncated:
        with contextlib.suppress(ValueError, RecursionError):  # shown as it is when it cannot be indented
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    if extension in ("csv", "tsv"):
        reader = csv.reader(io.StringIO(text), delimiter="\t" if extension == "tsv" else ",")
        rows = []
        for row in reader:
            rows.append(row)
            if len(rows) > CSV_PREVIEW_ROWS:
                break
        more = len(rows) > CSV_PREVIEW_ROWS or truncated
        return {"kind": "table", "rows": rows[:CSV_PREVIEW_ROWS], "more": more, "logged_table": False}
    return {"kind": "text", "text": text, "truncated": truncated}


async def _browser(request: web.Request, place: Place, relative: str, context: dict[str, Any]) -> web.StreamResponse:
    repository = repository_of(request)
    relative_path = parse_path(relative, allow_trailing_slash=True)
    target = place.root.join(relative_path)
    relative = str(relative_path)  # as parsed: a trailing '/' dropped
    after = query_params(request).get("after") or None
    segments = relative_path.parts
    # Listed together (one round trip, not one per level): this page's entries and the tree's levels
    # above it; past the first page the tree also needs the folder's own first entries.
    tree_folders = [place.root.join(ArtifactPath(segments[:depth])) for depth in range(len(segments))]
    if after:
        tree_folders.append(target)
    entries, *levels = await _listed_at_once(
        repository,
        [(target, after, ENTRIES_PER_PAGE + 1), *((folder, None, TREE_ENTRIES_PER_LEVEL) for folder in tree_folders)],
    )
    is_dir = bool(entries or after or target == place.root)
    if is_dir and not after:
        levels.append(entries[:TREE_ENTRIES_PER_LEVEL])
    common = {
        **context,
        "place": place,
        "relative": relative,
        "breadcrumbs": _breadcrumbs(place, relative),
        "tree": _tree(place, segments if is_dir else segments[:-1], levels),
    }
    if is_dir:
        shown = entries[:ENTRIES_PER_PAGE]
        series = image_series([(e.name, place.url_of(posixpath.join(relative, e.name))) for e in shown if not e.is_dir])
        return render(
            request,
            "artifacts.html",
            {
                **common,
                "title": relative or place.label,
                "is_dir": True,
                "entries": [{"entry": e, "url": place.url_of(posixpath.join(relative, e.name))} for e in shown],
                "more_url": (
                    f"{place.url_of(relative)}?after={quote(shown[-1].sort_key)}"
                    if len(entries) > ENTRIES_PER_PAGE
                    else None
                ),
                "zip_url": archive_url(target, "zip") if shown else None,
                "targz_url": archive_url(target, "tar.gz") if shown else None,
                "images": series_view(series, _step(query_params(request).get("step"))),
            },
        )
    try:
        info = await repository.head(target)
    except (NotFound, Conflict):
        raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"No artifact or folder '{relative}' in {place.label}") from None
    if "raw" in query_params(request):
        # The image preview's bytes, streamed from this origin: the download URL may redirect to a
        # bucket (--artifacts-redirect), which the page's Content-Security-Policy does not allow.
        async with await repository.get(target) as download:
            return await send_download(request, download)
    return render(
        request,
        "artifacts.html",
        {
            **common,
            "title": relative,
            "is_dir": False,
            "info": info,
            "download_url": download_url(target),
            "raw_url": f"{place.url_of(relative)}?raw=1",
            "preview": await _preview(repository, target, info.size),
        },
    )


def _step(value: str | None) -> int | None:
    """The image grid's step from the URL (`?step=`); anything but a whole number is refused."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ApiError.invalid(f"'step' must be a whole number, got '{value[:40]}'") from None


@page
async def run_artifacts_page(request: web.Request) -> web.StreamResponse:
    run = await request.app[STORE_KEY].get_run(request.match_info["run_id"])
    info = run["info"]
    root = request.app[LOCATIONS_KEY].run_path(info["artifact_uri"], "")  # 501 when stored elsewhere
    context = {"run": info, "run_url": f"/experiments/{info['experiment_id']}/runs/{info['run_id']}"}
    return await browse_place(request, _run_place(info, root), context)


async def browse_place(request: web.Request, place: Place, context: dict[str, Any]) -> web.StreamResponse:
    """The browser at the route's path below `place`; `context` says whose files they are (run or model)."""
    owner = {"run": None, "run_url": None, "model": None, **context}
    return await _browser(request, place, _raw_tail(request), owner)


@page
async def browse_page(request: web.Request) -> web.StreamResponse:
    place = Place(ArtifactPath.parse(""), "/browse", "destination root")
    return await browse_place(request, place, {})


async def stored_folder(request: web.Request, artifact_uri: str) -> dict[str, Any] | None:
    """`folder_summary` of a folder this server stores (a model version's files), browsed from the
    destination root; None when the folder lives elsewhere (a bucket, another server)."""
    root = request.app[LOCATIONS_KEY].browsable_root(artifact_uri)
    if root is None:
        return None
    return await folder_summary(request, Place(root, "/browse/" + quote(str(root), safe="/"), "files"))
