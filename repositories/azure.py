"""Azure Blob Storage repository on `azure.storage.blob.aio`.

Large uploads are staged as blocks with bounded concurrency and committed at the end together with
their SHA-256 metadata, so nothing is visible before the commit; small ones are one upload.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobBlock, BlobProperties, BlobSasPermissions, generate_blob_sas
from azure.storage.blob.aio import BlobServiceClient, ContainerClient, ExponentialRetry

from repositories.base import (
    Download,
    ListEntry,
    ObjectInfo,
    PresignedRequest,
    UnusableNames,
    UploadedPart,
)
from repositories.digests import DigestAccumulator, ExpectedDigests
from repositories.errors import (
    BackendError,
    ConcurrentWrite,
    Conflict,
    InvalidPath,
    NotFound,
    NotSupported,
    PermissionDenied,
    RepositoryError,
)
from repositories.object_store import CollisionCheck, ObjectStoreRepository
from repositories.options import AzureOptions
from repositories.parts import (
    Part,
    PartBuffers,
    first_part_if_only,
    hash_part,
    part_size_for,
    read_part,
    send_parts,
    split_into_parts,
)
from repositories.paths import ArtifactPath

MIB = 1 << 20
MAX_BLOCKS = 50_000
DELETE_BATCH = 256
DOWNLOAD_CHUNK_BYTES = 4 * MIB
SHA256_METADATA = "sha256"
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


def _block_id(upload_id: str, number: int) -> str:
    """Every block id of a blob must have the same length: a 32-hex upload id and a 6-digit number."""
    return f"{upload_id}-{number:06d}"


T = TypeVar("T")


def _error(exc: Exception, what: str) -> RepositoryError:
    request_id = None
    if isinstance(exc, HttpResponseError) and exc.response is not None:
        request_id = getattr(exc.response, "headers", {}).get("x-ms-request-id")
    code = getattr(exc, "error_code", None)
    if isinstance(exc, ResourceNotFoundError) and code != "ContainerNotFound":
        return NotFound(what)
    if code == "ContainerNotFound":
        return BackendError(f"Azure container does not exist ({what})", request_id=request_id)
    if isinstance(exc, ClientAuthenticationError) or getattr(exc, "status_code", None) == 403:
        return PermissionDenied(f"Azure refused access to '{what}' ({code or 'authentication failed'})")
    if "InvalidBlockList" in str(code) or "INVALID_BLOCK_LIST" in str(code):
        return Conflict(f"a part of the upload to '{what}' is missing or was never uploaded")
    if isinstance(exc, ResourceModifiedError):
        return Conflict(f"'{what}' changed while it was being read; retry")
    label = f"Azure error {code}" if code else "Azure error"
    return BackendError(f"{label} on '{what}': {str(exc).splitlines()[0]}", request_id=request_id)


async def _call(what: str, call: Awaitable[T]) -> T:
    try:
        return await call
    except AzureError as exc:
        raise _error(exc, what) from exc


def _info(path: ArtifactPath, properties: BlobProperties) -> ObjectInfo:
    return ObjectInfo(
        path=path,
        size=int(properties.size),
        last_modified=properties.last_modified.astimezone(UTC),
        etag=str(properties.etag).strip('"'),
        sha256=(properties.metadata or {}).get(SHA256_METADATA),
    )


class AzureDownload(Download):
    def __init__(self, container: ContainerClient, blob: str, info: ObjectInfo) -> None:
        self._container = container
        self._blob = blob
        self.info = info

    async def iter_range(self, offset: int, length: int) -> AsyncIterator[bytes]:
        if length <= 0:
            return
        client = self._container.get_blob_client(self._blob)
        what = str(self.info.path)
        downloader = await _call(
            what,
            client.download_blob(
                offset=offset,
                length=length,
                etag=f'"{self.info.etag}"',
                match_condition=MatchConditions.IfNotModified,
                max_concurrency=1,
            ),
        )
        try:
            async for chunk in downloader.chunks():
                yield chunk
        except AzureError as exc:
            raise _error(exc, what) from exc

    async def aclose(self) -> None:
        return None


class AzureRepository(ObjectStoreRepository):
    """Artifacts as blobs under `wasbs://container@account.blob.core.windows.net/prefix`."""

    kind = "azure"

    def __init__(self, container: str, account_host: str, prefix: str, options: AzureOptions) -> None:
        super().__init__()
        self.container_name = container
        self.account_host = account_host
        self.account_name = account_host.split(".", 1)[0]
        self.prefix = prefix.strip("/")
        self.options = options
        self._service: BlobServiceClient | None = None
        self._container: ContainerClient | None = None
        self._credential: Any = None

    @property
    def container(self) -> ContainerClient:
        if self._container is None:
            raise BackendError("Azure repository used before start()")
        return self._container

    async def start(self) -> None:
        options = self.options
        connection_string = options.connection_string or os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
        # Fail within seconds, not minutes: the storage SDK's default backoff starts at 15 s.
        retry = ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=3, random_jitter_range=1)
        # Downloads hold one range request in memory at a time: 4 MiB, instead of the SDK's 32 MiB
        # first read, which also made the first byte wait for 32 MiB.
        extra: dict[str, Any] = {
            "retry_policy": retry,
            "connection_timeout": 10,
            "max_single_get_size": DOWNLOAD_CHUNK_BYTES,
            "max_chunk_get_size": DOWNLOAD_CHUNK_BYTES,
        }
        if options.api_version:
            extra["api_version"] = options.api_version
        if connection_string:
            self._service = BlobServiceClient.from_connection_string(connection_string, **extra)
        else:
            account_url = f"https://{self.account_host}"
            key = options.account_key or os.environ.get("AZURE_STORAGE_ACCESS_KEY")
            sas = options.sas_token or os.environ.get("AZURE_STORAGE_SAS_TOKEN")
            if key:
                credential: Any = {"account_name": self.account_name, "account_key": key}
            elif sas:
                credential = sas.lstrip("?")
            else:
                try:
                    from azure.identity.aio import DefaultAzureCredential
                except ImportError:
                    raise PermissionDenied(
                        "no Azure credentials: set AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCESS_KEY or "
                        "AZURE_STORAGE_SAS_TOKEN, or install azure-identity"
                    ) from None
                credential = self._credential = DefaultAzureCredential()
            self._service = BlobServiceClient(account_url, credential=credential, **extra)
        self._container = self._service.get_container_client(self.container_name)

    async def check(self) -> None:
        await _call(f"container '{self.container_name}'", self.container.get_container_properties())

    async def close(self) -> None:
        if self._service is not None:
            await self._service.close()
        if self._credential is not None:
            await self._credential.close()
        self._service = self._container = None

    # -- writes ------------------------------------------------------------------------------

    async def _put(
        self,
        path: ArtifactPath,
        body: AsyncIterator[bytes],
        expected: ExpectedDigests | None,
        content_length: int | None,
        collisions: CollisionCheck,
    ) -> ObjectInfo:
        what = str(path)
        blob = self.container.get_blob_client(self.key(path))
        digests = DigestAccumulator(expected)
        buffers = PartBuffers(
            part_size_for(self.options.block_size, content_length, MAX_BLOCKS), self.options.max_blocks_in_flight + 1
        )
        only, parts = await first_part_if_only(split_into_parts(body, buffers))
        if only is not None:
            await asyncio.to_thread(hash_part, digests, only)
            sha256 = digests.finish()
            await collisions.passed()
            # The Azure SDK sends bytes as they are; a file body would go through its chunked upload.
            result = await _call(
                what, blob.upload_blob(only.getvalue(), overwrite=True, metadata={SHA256_METADATA: sha256})
            )
        else:
            nonce = uuid.uuid4().hex

            async def send(number: int, data: Part) -> None:
                await _call(what, blob.stage_block(_block_id(nonce, number), data, length=len(data)))

            # Nothing is visible until the commit; uncommitted blocks of a failed upload expire on
            # their own (Azure drops them after a week, or at the blob's next commit).
            count = await send_parts(
                parts, buffers, digests, send, max_in_flight=self.options.max_blocks_in_flight, max_parts=MAX_BLOCKS
            )
            sha256 = digests.finish()
            await collisions.passed()
            try:
                result = await _call(
                    what,
                    blob.commit_block_list(
                        [BlobBlock(_block_id(nonce, n)) for n in range(1, count + 1)],
                        metadata={SHA256_METADATA: sha256},
                    ),
                )
            except Conflict:
                # Every block was staged, so the blob's list lost some: another upload of this blob
                # committed meanwhile, and a commit drops every uncommitted block it does not list.
                # The blob is that upload's, whole; this one can only be sent again.
                raise ConcurrentWrite(
                    f"Another upload of '{path}' was stored while this one was being sent, which discarded this "
                    "one's parts; nothing of it was stored. Send it again."
                ) from None
        return ObjectInfo(
            path, digests.size, result["last_modified"].astimezone(UTC), str(result["etag"]).strip('"'), sha256
        )

    # -- multipart uploads through the API: the upload id names its blocks; Azure keeps them --

    def _block_id(self, upload_id: str, number: int) -> str:
        """The block's id as the SDK takes it (it base64-encodes ids on the wire, as Azure requires)."""
        if not _UPLOAD_ID.match(upload_id):
            raise NotFound(f"upload {upload_id[:64]}")
        return _block_id(upload_id, number)

    async def create_multipart(self, path: ArtifactPath, *, num_parts: int | None = None) -> str:
        if path.is_root:
            raise InvalidPath("", "an upload needs a file name")
        return uuid.uuid4().hex

    async def put_part(
        self, path: ArtifactPath, upload_id: str, number: int, body: AsyncIterator[bytes], *, content_length: int | None
    ) -> str:
        block_id = self._block_id(upload_id, number)
        data = await read_part(body, self.options.max_proxied_part_size)
        blob = self.container.get_blob_client(self.key(path))
        await _call(str(path), blob.stage_block(block_id, data, length=len(data)))
        return block_id

    async def multipart_size(self, path: ArtifactPath, upload_id: str, parts: Sequence[UploadedPart]) -> int:
        """From the blob's uncommitted block list (the blocks `complete_multipart` would commit)."""
        wanted = {}
        for part in parts:
            block_id = self._block_id(upload_id, part.number)
            if part.etag.strip('"') not in (block_id, ""):
                raise Conflict(f"part {part.number}: ETag does not match the uploaded block")
            wanted[block_id] = part.number
        blob = self.container.get_blob_client(self.key(path))
        try:
            _, uncommitted = await _call(str(path), blob.get_block_list("uncommitted"))
        except NotFound:  # no block staged yet: the blob does not exist at all
            uncommitted = []
        sizes = {block.id: int(block.size) for block in uncommitted if block.id in wanted}
        if missing := sorted(number for block_id, number in wanted.items() if block_id not in sizes):
            raise Conflict(f"part {missing[0]} of the upload is missing or was never uploaded")
        return sum(sizes.values())

    async def complete_multipart(self, path: ArtifactPath, upload_id: str, parts: Sequence[UploadedPart]) -> ObjectInfo:
        blocks = []
        for part in sorted(parts, key=lambda item: item.number):
            block_id = self._block_id(upload_id, part.number)
            if part.etag.strip('"') not in (block_id, ""):
                raise Conflict(f"part {part.number}: ETag does not match the uploaded block")
            blocks.append(BlobBlock(block_id))
        await self._check_no_collision(path)
        blob = self.container.get_blob_client(self.key(path))
        await _call(str(path), blob.commit_block_list(blocks))
        return await self.head(path)

    async def abort_multipart(self, path: ArtifactPath, upload_id: str) -> None:
        """Nothing to do: uncommitted blocks are never visible and Azure discards them itself."""
        self._block_id(upload_id, 1)

    def _account_key(self) -> str | None:
        if self.options.account_key or os.environ.get("AZURE_STORAGE_ACCESS_KEY"):
            return self.options.account_key or os.environ.get("AZURE_STORAGE_ACCESS_KEY")
        connection_string = self.options.connection_string or os.environ.get("AZURE_STORAGE_CONNECTION_STRING") or ""
        match = re.search(r"(?:^|;)AccountKey=([^;]+)", connection_string)
        return match.group(1) if match else None

    @property
    def can_presign(self) -> bool:
        return self._account_key() is not None

    def _sas_url(self, path: ArtifactPath, permission: BlobSasPermissions, expires_s: int) -> str:
        key = self._account_key()
        if key is None:
            raise NotSupported(
                "presigned Azure URLs need an account key (connection string or AZURE_STORAGE_ACCESS_KEY)"
            )
        blob = self.container.get_blob_client(self.key(path))
        sas = generate_blob_sas(
            blob.account_name or self.account_name,
            self.container_name,
            self.key(path),
            account_key=key,
            permission=permission,
            expiry=datetime.now(UTC) + timedelta(seconds=expires_s),
        )
        return f"{blob.url}?{sas}"

    async def presign_part(self, path: ArtifactPath, upload_id: str, number: int, expires_s: int) -> PresignedRequest:
        url = self._sas_url(path, BlobSasPermissions(write=True), expires_s)
        encoded = base64.b64encode(self._block_id(upload_id, number).encode()).decode()  # what the REST API takes
        block_id = quote(encoded, safe="")
        return PresignedRequest(f"{url}&comp=block&blockid={block_id}", {})

    async def presign_get(self, path: ArtifactPath, expires_s: int) -> PresignedRequest:
        return PresignedRequest(self._sas_url(path, BlobSasPermissions(read=True), expires_s), {})

    async def _delete(self, path: ArtifactPath) -> None:
        if path.is_root:
            raise InvalidPath("", "refusing to delete the whole artifact destination")
        what = str(path)
        key = self.key(path)
        with contextlib.suppress(NotFound):
            await _call(what, self.container.delete_blob(key))
        batch: list[str] = []
        try:
            async for blob in self.container.list_blobs(name_starts_with=f"{key}/"):
                batch.append(blob.name)
                if len(batch) == DELETE_BATCH:
                    await self._delete_batch(what, batch)
                    batch = []
        except AzureError as exc:
            raise _error(exc, what) from exc
        if batch:
            await self._delete_batch(what, batch)

    async def _delete_batch(self, what: str, names: list[str]) -> None:
        responses = await _call(what, self.container.delete_blobs(*names, raise_on_any_failure=False))
        async for response in responses:
            if response.status_code not in (202, 404):
                raise BackendError(f"Azure could not delete blobs under '{what}' (status {response.status_code})")

    # -- reads -------------------------------------------------------------------------------

    async def head(self, path: ArtifactPath) -> ObjectInfo:
        if path.is_root:
            raise Conflict("Artifact path refers to a directory, not a file: ''")
        blob = self.container.get_blob_client(self.key(path))
        try:
            properties = await _call(str(path), blob.get_blob_properties())
        except NotFound:
            if await self._is_directory(path):
                raise Conflict(f"Artifact path refers to a directory, not a file: '{path}'") from None
            raise
        return _info(path, properties)

    async def get(self, path: ArtifactPath) -> Download:
        return AzureDownload(self.container, self.key(path), await self.head(path))

    async def _is_file(self, path: ArtifactPath) -> bool:
        try:
            await _call(str(path), self.container.get_blob_client(self.key(path)).get_blob_properties())
        except NotFound:
            return False
        return True

    async def _is_directory(self, path: ArtifactPath) -> bool:
        try:
            async for _ in self.container.list_blobs(name_starts_with=self._dir_prefix(path), results_per_page=1):
                return True
        except AzureError as exc:
            raise _error(exc, str(path)) from exc
        return False

    async def list(self, path: ArtifactPath, *, start_after: str | None = None) -> AsyncGenerator[ListEntry, None]:
        prefix = self._dir_prefix(path)
        unusable = UnusableNames(self.kind, path)
        try:
            pages = self.container.walk_blobs(name_starts_with=prefix or None, delimiter="/").by_page()
            async for page in pages:
                entries = []
                async for item in page:
                    name = item.name[len(prefix) :]
                    if isinstance(item, BlobProperties):
                        entries.append(ListEntry(name=name, is_dir=False, size=int(item.size)))
                    else:
                        entries.append(ListEntry(name=name.rstrip("/"), is_dir=True))
                # A page holds its prefixes before its blobs; pages follow each other in key order.
                # Azure has no start-after: skip up to the token.
                for entry in sorted(entries, key=lambda e: e.sort_key.encode()):
                    wanted = entry.name and "/" not in entry.name
                    if wanted and (start_after is None or entry.sort_key > start_after) and unusable.usable(entry.name):
                        yield entry
        except AzureError as exc:
            raise _error(exc, str(path)) from exc
        finally:
            unusable.report()
