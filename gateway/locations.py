"""Where experiments keep artifacts: which `artifact_location` values are allowed, and run listings.

MLflow shipped several CVEs through `artifact_location`, so a client may only choose a location the
server cannot be tricked with: a host-less `mlflow-artifacts:/path` (inside the destination), the
artifact host the operator configured, or an `s3://` / `wasbs://` bucket that clients then write to
directly with their own credentials. Local paths, `file:`, other hosts and schemes are refused.
"""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from gateway.http.errors import ApiError
from repositories import ArtifactPath, ArtifactRepository
from repositories.errors import InvalidPath

DIRECT_SCHEMES = ("s3", "wasbs", "gs")


def _path_of(uri: str, *, scheme: str) -> str:
    return urlsplit(uri).path.lstrip("/") if scheme else uri


class ArtifactLocations:
    def __init__(self, default_root: str, repository: ArtifactRepository | None) -> None:
        self.default_root = default_root
        self.repository = repository
        root = urlsplit(default_root)
        self._artifact_host = root.netloc.lower() if root.scheme == "mlflow-artifacts" else None

    def validate(self, uri: str) -> str:
        """`uri` when a client may use it as an experiment's artifact location; else a 400."""
        parts = urlsplit(uri)
        scheme = parts.scheme.lower()
        refuse = ApiError.invalid(
            f"'artifact_location' '{uri}' is not allowed: use mlflow-artifacts:/<path> (stored by this server) "
            f"or an s3:// or wasbs:// bucket location"
        )
        if parts.query or parts.fragment or ";" in parts.path or "\\" in uri:
            raise refuse
        segments = [segment for segment in parts.path.split("/") if segment]
        if any(segment in (".", "..") for segment in segments):
            raise refuse
        if scheme == "mlflow-artifacts":
            if parts.netloc and parts.netloc.lower() != self._artifact_host:
                raise refuse  # another host: the server would hand out URIs that send clients elsewhere
            if not parts.netloc and self.repository is None:
                raise ApiError.invalid(
                    "This server does not store artifacts (--no-serve-artifacts); "
                    "'mlflow-artifacts:/' locations are not available"
                )
            try:
                ArtifactPath.parse("/".join(segments))
            except InvalidPath as exc:
                raise ApiError.invalid(f"'artifact_location': {exc.message}") from None
            return uri
        if scheme in DIRECT_SCHEMES and parts.netloc:
            return uri
        raise refuse

    def served_root(self, artifact_uri: str) -> ArtifactPath | None:
        """Where this server stores a run's artifacts; None when they live elsewhere (a bucket, another
        artifacts server, or this one runs with --no-serve-artifacts). 400 for an invalid root path."""
        parts = urlsplit(artifact_uri)
        if parts.scheme != "mlflow-artifacts" or parts.netloc or self.repository is None:
            return None
        try:
            return ArtifactPath.parse(parts.path.strip("/"))
        except InvalidPath as exc:
            raise ApiError.invalid(exc.message) from None

    def run_path(self, artifact_uri: str, relative: str) -> ArtifactPath:
        """Where `relative` (a path inside a run) is stored, when this server serves the run's root.

        501 when the run's artifacts live elsewhere (see `served_root`); 400 when either part is not
        a valid artifact path.
        """
        base = self.served_root(artifact_uri)
        if base is None:
            raise ApiError(
                501,
                "NOT_IMPLEMENTED",
                f"This server does not serve artifacts stored at '{artifact_uri}'; the client reads "
                "them from that location directly",
            )
        try:
            return base.join(ArtifactPath.parse(relative))  # parsed alone, so a refusal describes the client's text
        except InvalidPath as exc:
            raise ApiError.invalid(exc.message) from None

    async def list_run(self, artifact_uri: str, path: str) -> dict[str, Any]:
        """MLflow's `artifacts/list`: one level of a run's artifacts, paths relative to the run."""
        relative = path.strip("/")
        target = self.run_path(artifact_uri, relative)
        assert self.repository is not None  # run_path refused otherwise
        files = []
        async with contextlib.aclosing(self.repository.list(target)) as listing:  # closed if the client leaves
            async for entry in listing:
                item: dict[str, Any] = {
                    "path": f"{relative}/{entry.name}" if relative else entry.name,
                    "is_dir": entry.is_dir,
                }
                if not entry.is_dir:
                    item["file_size"] = entry.size
                files.append(item)
        body: dict[str, Any] = {"root_uri": artifact_uri}
        if files:
            body["files"] = files
        return body


LOCATIONS_KEY = web.AppKey("artifact_locations", ArtifactLocations)
