"""S3 (and S3-compatible) repository on aiobotocore: every call is a coroutine, none blocks the loop.

Uploads below one part go out as a single PutObject; larger ones stream into a multipart upload
with a fixed part size and a bounded number of parts in flight, so an upload holds at most
`part_size x max_parts_in_flight` bytes whatever its size, and any failure aborts the upload.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from botocore.utils import determine_content_length

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
    Conflict,
    InvalidPath,
    NotFound,
    PermissionDenied,
    RepositoryError,
)
from repositories.object_store import CollisionCheck, ObjectStoreRepository
from repositories.options import S3Options
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
MIN_PART_SIZE = 5 * MIB  # S3's floor for every part but the last
MAX_PARTS = 10_000
DELETE_BATCH = 1000
READ_CHUNK_BYTES = MIB
SMALL_OBJECT_BYTES = 64 << 10
"""Objects up to this size are hashed on the event loop (tens of microseconds; larger ones in a thread)
and sent without `Expect: 100-continue` (see `_send_small_bodies_at_once`)."""
SHA256_METADATA = "sha256"

T = TypeVar("T")


def _error(exc: Exception, what: str) -> RepositoryError:
    """Translate a botocore error into the repository family, keeping S3's request id."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        request_id = exc.response.get("ResponseMetadata", {}).get("RequestId")
        if code in ("NoSuchKey", "404", "NotFound") or (status == 404 and code != "NoSuchBucket"):
            return NotFound(what)
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch") or status == 403:
            return PermissionDenied(f"S3 refused access to '{what}' ({code})")
        if code in ("PreconditionFailed", "412"):
            return Conflict(f"'{what}' changed while it was being read; retry")
        if code == "NoSuchBucket":
            return BackendError(f"S3 bucket does not exist ({what})", request_id=request_id)
        return BackendError(f"S3 error {code or status} on '{what}': {exc}", request_id=request_id)
    if isinstance(exc, NoCredentialsError):
        return PermissionDenied(
            "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or use an "
            "instance or pod role"
        )
    return BackendError(f"S3 is unreachable or failed on '{what}': {exc}")


async def _call(what: str, call: Awaitable[T]) -> T:
    try:
        return await call
    except (ClientError, BotoCoreError) as exc:
        raise _error(exc, what) from exc


def _send_small_bodies_at_once(request: Any, **_: Any) -> None:
    """No `Expect: 100-continue` on a PutObject of up to `SMALL_OBJECT_BYTES`.

    botocore asks for it on every body (it turns bytes into a file first), and the client then
    sends the headers alone and waits for S3's go-ahead before the body: for a small object a
    round trip more, and the largest part of its time on a loaded server, to save sending a few KiB
    that an error would discard.
    """
    if "Expect" not in request.headers:
        return
    length = determine_content_length(request.body)
    if length is not None and length <= SMALL_OBJECT_BYTES:
        del request.headers["Expect"]


def _info(path: ArtifactPath, head: dict[str, Any]) -> ObjectInfo:
    modified = head.get("LastModified") or datetime.now(UTC)
    return ObjectInfo(
        path=path,
        size=int(head["ContentLength"]),
        last_modified=modified.astimezone(UTC),
        etag=str(head.get("ETag", "")).strip('"'),
        sha256=(head.get("Metadata") or {}).get(SHA256_METADATA),
    )


class S3Download(Download):
    """An object described by HeadObject; bytes come from ranged GetObject pinned to its ETag."""

    def __init__(self, repository: S3Repository, key: str, info: ObjectInfo) -> None:
        self._repository = repository
        self._key = key
        self.info = info

    async def iter_range(self, offset: int, length: int) -> AsyncIterator[bytes]:
        if length <= 0:
            return
        response = await _call(
            str(self.info.path),
            self._repository.client.get_object(
                Bucket=self._repository.bucket,
                Key=self._key,
                Range=f"bytes={offset}-{offset + length - 1}",
                IfMatch=f'"{self.info.etag}"',
            ),
        )
        async with response["Body"] as body:
            try:
                async for chunk in body.iter_chunks(READ_CHUNK_BYTES):
                    yield chunk
            except (ClientError, BotoCoreError) as exc:
                raise _error(exc, str(self.info.path)) from exc
            except (aiohttp.ClientError, TimeoutError) as exc:  # the connection to S3 broke mid-body
                raise BackendError(f"S3 stopped sending '{self.info.path}' mid-download: {exc}") from exc

    async def aclose(self) -> None:
        return None


class S3Repository(ObjectStoreRepository):
    """Artifacts as objects under `s3://bucket/prefix`."""

    kind = "s3"

    def __init__(self, bucket: str, prefix: str, options: S3Options) -> None:
        super().__init__()
        if options.part_size < MIN_PART_SIZE:
            raise InvalidPath("", f"S3 part size must be at least {MIN_PART_SIZE // MIB} MiB")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.options = options
        self._client: Any = None
        self._exit_stack = contextlib.AsyncExitStack()

    @property
    def client(self) -> Any:
        if self._client is None:
            raise BackendError("S3 repository used before start()")
        return self._client

    async def start(self) -> None:
        endpoint = (
            self.options.endpoint_url
            or os.environ.get("MLFLOW_S3_ENDPOINT_URL")
            or os.environ.get("AWS_ENDPOINT_URL")
            or None
        )
        config = AioConfig(
            # Bodies carry a checksum header computed off the loop (`_integrity`), so the SigV4
            # signature covers headers only, as botocore does by default over HTTPS; signing the
            # body would hash every byte again, on the event loop, on plain-HTTP endpoints.
            s3={"addressing_style": self.options.addressing_style, "payload_signing_enabled": False},
            request_checksum_calculation=self.options.checksums,
            response_checksum_validation=self.options.checksums,
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=10,
            max_pool_connections=64,
        )
        session = get_session()
        self._client = await self._exit_stack.enter_async_context(
            session.create_client("s3", endpoint_url=endpoint, region_name=self.options.region, config=config)
        )
        self._client.meta.events.register("before-sign.s3.PutObject", _send_small_bodies_at_once)

    async def check(self) -> None:
        await _call(f"s3://{self.bucket}", self.client.head_bucket(Bucket=self.bucket))

    async def close(self) -> None:
        await self._exit_stack.aclose()
        self._client = None

    # -- writes ------------------------------------------------------------------------------

    async def _put(
        self,
        path: ArtifactPath,
        body: AsyncIterator[bytes],
        expected: ExpectedDigests | None,
        content_length: int | None,
        collisions: CollisionCheck,
    ) -> ObjectInfo:
        key = self.key(path)
        buffers = PartBuffers(
            part_size_for(self.options.part_size, content_length, MAX_PARTS), self.options.max_parts_in_flight + 1
        )
        only, parts = await first_part_if_only(split_into_parts(body, buffers))
        if only is not None:  # fits in one part: a single PutObject, digest stored as metadata
            await collisions.passed()
            digests = DigestAccumulator(expected)
            if len(only) <= SMALL_OBJECT_BYTES:
                integrity = self._hash_and_integrity(digests, only)
            else:
                integrity = await asyncio.to_thread(self._hash_and_integrity, digests, only)
            sha256 = digests.finish()
            response = await _call(
                str(path),
                self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=only, Metadata={SHA256_METADATA: sha256}, **integrity
                ),
            )
            return ObjectInfo(path, len(only), datetime.now(UTC), str(response.get("ETag", "")).strip('"'), sha256)
        # S3 cannot attach a digest to a multipart object once it is complete, so the SHA-256 is
        # computed only for a client that sent a digest to verify or asked for one (Want-Repr-Digest).
        multipart_digests = DigestAccumulator(expected) if expected is not None else None
        created = await _call(str(path), self.client.create_multipart_upload(Bucket=self.bucket, Key=key))
        upload_id = created["UploadId"]
        etags: dict[int, str] = {}

        async def send(number: int, data: Part) -> None:
            integrity = await asyncio.to_thread(self._integrity, data)
            response = await _call(
                str(path),
                self.client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data, **integrity
                ),
            )
            etags[number] = response["ETag"]

        try:
            count = await send_parts(
                parts,
                buffers,
                multipart_digests,
                send,
                max_in_flight=self.options.max_parts_in_flight,
                max_parts=MAX_PARTS,
            )
            multipart_sha256 = multipart_digests.finish() if multipart_digests else None
            await collisions.passed()
            await _call(
                str(path),
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in range(1, count + 1)]},
                ),
            )
        except BaseException:
            await asyncio.shield(self._abort(key, upload_id))
            raise
        stored = _info(path, await _call(str(path), self.client.head_object(Bucket=self.bucket, Key=key)))
        return ObjectInfo(path, stored.size, stored.last_modified, stored.etag, multipart_sha256)

    def _hash_and_integrity(self, digests: DigestAccumulator, part: Part) -> dict[str, str]:
        """Both passes over a single-put object in one thread hop."""
        hash_part(digests, part)
        return self._integrity(part)

    def _integrity(self, part: Part) -> dict[str, str]:
        """The checksum parameter S3 verifies `part` against (blocking: run it in a thread).

        CRC32 as botocore would send it; Content-MD5 where the server rejects botocore's checksums.
        """
        with part.getbuffer() as view:
            if self.options.checksums == "when_supported":
                return {"ChecksumCRC32": base64.b64encode(zlib.crc32(view).to_bytes(4, "big")).decode()}
            return {"ContentMD5": base64.b64encode(hashlib.md5(view, usedforsecurity=False).digest()).decode()}

    # -- multipart uploads through the API: the S3 upload id is the upload id --

    @property
    def can_presign(self) -> bool:
        return True

    async def create_multipart(self, path: ArtifactPath, *, num_parts: int | None = None) -> str:
        if path.is_root:
            raise InvalidPath("", "an upload needs a file name")
        created = await _call(str(path), self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key(path)))
        return str(created["UploadId"])

    async def put_part(
        self, path: ArtifactPath, upload_id: str, number: int, body: AsyncIterator[bytes], *, content_length: int | None
    ) -> str:
        data = await read_part(body, self.options.max_proxied_part_size)
        integrity = await asyncio.to_thread(self._integrity, data)
        response = await _call(
            str(path),
            self.client.upload_part(
                Bucket=self.bucket, Key=self.key(path), UploadId=upload_id, PartNumber=number, Body=data, **integrity
            ),
        )
        return str(response["ETag"]).strip('"')

    async def multipart_size(self, path: ArtifactPath, upload_id: str, parts: Sequence[UploadedPart]) -> int:
        """From ListParts; a part counts only with the ETag listed, as CompleteMultipartUpload requires."""
        wanted = {part.number: part.etag.strip('"') for part in parts}
        sizes: dict[int, int] = {}
        paginator = self.client.get_paginator("list_parts")
        try:
            async for page in paginator.paginate(Bucket=self.bucket, Key=self.key(path), UploadId=upload_id):
                for stored in page.get("Parts", []):
                    number = int(stored["PartNumber"])
                    if wanted.get(number) == str(stored["ETag"]).strip('"'):
                        sizes[number] = int(stored["Size"])
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, str(path)) from exc
        if missing := sorted(set(wanted) - set(sizes)):
            raise Conflict(f"part {missing[0]} of the upload is missing or its ETag differs")
        return sum(sizes.values())

    async def complete_multipart(self, path: ArtifactPath, upload_id: str, parts: Sequence[UploadedPart]) -> ObjectInfo:
        ordered = sorted(parts, key=lambda part: part.number)
        await self._check_no_collision(path)
        try:
            await _call(
                str(path),
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=self.key(path),
                    UploadId=upload_id,
                    MultipartUpload={
                        "Parts": [{"PartNumber": p.number, "ETag": f'"{p.etag.strip(chr(34))}"'} for p in ordered]
                    },
                ),
            )
        except BackendError as exc:
            if "InvalidPart" in exc.message or "EntityTooSmall" in exc.message:
                raise Conflict(f"S3 refused the part list: {exc.message}") from None
            raise
        return await self.head(path)

    async def abort_multipart(self, path: ArtifactPath, upload_id: str) -> None:
        await self._abort(self.key(path), upload_id)

    async def presign_part(self, path: ArtifactPath, upload_id: str, number: int, expires_s: int) -> PresignedRequest:
        url = await self.client.generate_presigned_url(
            "upload_part",
            ExpiresIn=expires_s,
            Params={"Bucket": self.bucket, "Key": self.key(path), "UploadId": upload_id, "PartNumber": number},
        )
        return PresignedRequest(url, {})

    async def presign_get(self, path: ArtifactPath, expires_s: int) -> PresignedRequest:
        url = await self.client.generate_presigned_url(
            "get_object", ExpiresIn=expires_s, Params={"Bucket": self.bucket, "Key": self.key(path)}
        )
        return PresignedRequest(url, {})

    async def sweep_abandoned(self, older_than_s: float) -> int:
        """Abort multipart uploads under the prefix started more than `older_than_s` ago."""
        cutoff = datetime.now(UTC).timestamp() - older_than_s
        removed = 0
        paginator = self.client.get_paginator("list_multipart_uploads")
        try:
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=self._dir_prefix(ArtifactPath(()))):
                for upload in page.get("Uploads", []):
                    if upload["Initiated"].timestamp() < cutoff:
                        await self._abort(upload["Key"], upload["UploadId"])
                        removed += 1
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, f"s3://{self.bucket}") from exc
        return removed

    async def _abort(self, key: str, upload_id: str) -> None:
        with contextlib.suppress(ClientError, BotoCoreError):
            await self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    async def _delete(self, path: ArtifactPath) -> None:
        if path.is_root:
            raise InvalidPath("", "refusing to delete the whole artifact destination")
        key = self.key(path)
        await _call(str(path), self.client.delete_object(Bucket=self.bucket, Key=key))
        batch: list[dict[str, str]] = []
        folders = {f"{key}/"}
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{key}/"):
                for item in page.get("Contents", []):
                    batch.append({"Key": item["Key"]})
                    folders.update(_folders_between(key, item["Key"]))
                    if len(batch) == DELETE_BATCH:
                        await self._delete_batch(path, batch)
                        batch = []
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, str(path)) from exc
        if batch:
            await self._delete_batch(path, batch)
        # Filer-backed servers (SeaweedFS, JuiceFS, ...) keep emptied folders and list them as
        # prefixes; deleting their "dir/" keys deepest first removes them. On AWS these are no-ops.
        for folder in sorted(folders, key=lambda name: name.count("/"), reverse=True):
            with contextlib.suppress(NotFound, BackendError):
                await _call(str(path), self.client.delete_object(Bucket=self.bucket, Key=folder))

    async def _delete_batch(self, path: ArtifactPath, batch: list[dict[str, str]]) -> None:
        response = await _call(
            str(path), self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        )
        if response.get("Errors"):
            first = response["Errors"][0]
            raise BackendError(f"S3 could not delete '{first.get('Key')}': {first.get('Code')}")

    # -- reads -------------------------------------------------------------------------------

    async def head(self, path: ArtifactPath) -> ObjectInfo:
        if path.is_root:
            raise Conflict("Artifact path refers to a directory, not a file: ''")
        try:
            head = await _call(str(path), self.client.head_object(Bucket=self.bucket, Key=self.key(path)))
        except NotFound:
            if await self._is_directory(path):
                raise Conflict(f"Artifact path refers to a directory, not a file: '{path}'") from None
            raise
        return _info(path, head)

    async def get(self, path: ArtifactPath) -> Download:
        return S3Download(self, self.key(path), await self.head(path))

    async def _is_file(self, path: ArtifactPath) -> bool:
        try:
            await _call(str(path), self.client.head_object(Bucket=self.bucket, Key=self.key(path)))
        except NotFound:
            return False
        return True

    async def _is_directory(self, path: ArtifactPath) -> bool:
        response = await _call(
            str(path), self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._dir_prefix(path), MaxKeys=1)
        )
        return bool(response.get("KeyCount") or response.get("Contents"))

    async def list(self, path: ArtifactPath, *, start_after: str | None = None) -> AsyncGenerator[ListEntry, None]:
        prefix = self._dir_prefix(path)
        arguments: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "Delimiter": "/"}
        if start_after and (marker := _marker_before(start_after)):
            arguments["StartAfter"] = prefix + marker
        paginator = self.client.get_paginator("list_objects_v2")
        unusable = UnusableNames(self.kind, path)
        try:
            async for page in paginator.paginate(**arguments):
                entries = [
                    ListEntry(name=item["Prefix"][len(prefix) :].rstrip("/"), is_dir=True)
                    for item in page.get("CommonPrefixes", [])
                ]
                entries += [
                    ListEntry(name=item["Key"][len(prefix) :], is_dir=False, size=int(item["Size"]))
                    for item in page.get("Contents", [])
                ]
                for entry in sorted(entries, key=lambda e: e.sort_key.encode()):
                    # Skip directory markers ("dir/" objects) and prefixes re-rolled after StartAfter.
                    wanted = entry.name and "/" not in entry.name
                    if wanted and (start_after is None or entry.sort_key > start_after) and unusable.usable(entry.name):
                        yield entry
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, str(path)) from exc
        finally:
            unusable.report()


def _marker_before(start_after: str) -> str:
    """A StartAfter key safely before every entry whose sort key follows `start_after`.

    Servers disagree on where a prefix sorts against a key (AWS compares keys, where 'sub.txt' <
    'sub/'; filer-backed servers compare names, where 'sub' < 'sub.txt'), so cut the marker before
    the first character that can reorder them and one more; the listing then skips the overlap.
    """
    cut = next((index for index, char in enumerate(start_after) if char <= "/"), len(start_after))
    return start_after[: max(0, cut - 1)]


def _folders_between(root_key: str, object_key: str) -> list[str]:
    """The 'folder/' keys strictly between `root_key/` and `object_key`."""
    parts = object_key[len(root_key) + 1 :].split("/")[:-1]
    return [f"{root_key}/{'/'.join(parts[: depth + 1])}/" for depth in range(len(parts))]
