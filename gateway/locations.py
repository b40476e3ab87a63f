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
PROXY_PATH = "/api/2.0/mlflow-artifacts/artifacts"
"""Where the artifact proxy keeps its files in URL form: MLflow's older roots point at it over http(s)."""
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


def own_proxy_url(uri: str, public_url: str | None, port: int) -> bool:
    """Whether `uri` is this server's own artifact proxy in http(s) form (MLflow's older
    `--default-artifact-root http://<server>/api/2.0/mlflow-artifacts/artifacts`): its `--public-url`,
    or a loopback name on the port it listens on. Only the operator's configured root is asked."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not (parts.path + "/").startswith(PROXY_PATH + "/"):
        return False
    if public_url and parts.netloc.lower() == urlsplit(public_url).netloc.lower():
        return True
    return (parts.hostname or "") in LOOPBACK_NAMES and (parts.port or 80) == port


class ArtifactLocations:
    """The location policy, and where this server itself stores artifacts of the runs it tracks.

    Its own places are the artifact proxy's (`mlflow-artifacts:/...`, and the root the operator
    configured in http(s) form) when it serves artifacts, and the operator's `file:` root in no-proxy
    mode (`--no-serve-artifacts --default-artifact-root file:///data/artifacts`, a single-machine
    setup MLflow documents). `repository` holds whichever of these is served.
    """

    def __init__(
        self, default_root: str, repository: ArtifactRepository | None, *, proxy: bool = True, own_root: bool = False
    ) -> None:
        self.default_root = default_root
        self.repository = repository
        self.proxy = proxy
        """Whether the mlflow-artifacts API is served (the UI links its downloads there)."""
        root = urlsplit(default_root)
        self._artifact_host = root.netloc.lower() if root.scheme == "mlflow-artifacts" else None
        self._prefixes: list[str] = []
        if repository is not None and proxy:
            self._prefixes.append("mlflow-artifacts:")
        if repository is not None and own_root and root.scheme in ("file", "http", "https"):
            self._prefixes.append(default_root.rstrip("/") if root.scheme == "file" else _proxy_prefix(default_root))

    def _own_place(self, uri: str) -> str | None:
        """The path below one of this server's own prefixes, or None when `uri` is not under one."""
        parts = urlsplit(uri)
        if parts.scheme == "mlflow-artifacts":
            return parts.path if not parts.netloc and "mlflow-artifacts:" in self._prefixes else None
        for prefix in self._prefixes:
            if prefix != "mlflow-artifacts:" and (uri == prefix or uri.startswith(prefix + "/")):
                return uri[len(prefix) :]
        return None

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
        if (below := self._own_place(uri)) is not None:  # inside the root the operator configured
            try:
                ArtifactPath.parse(below.strip("/"))
            except InvalidPath as exc:
                raise ApiError.invalid(f"'artifact_location': {exc.message}") from None
            return uri
        raise refuse

    def served_root(self, artifact_uri: str) -> ArtifactPath | None:
        """Where this server stores a run's artifacts; None when they live elsewhere (a bucket, another
        artifacts server, or a root this server does not serve). 400 for an invalid root path."""
        below = self._own_place(artifact_uri)
        if below is None or self.repository is None:
            return None
        try:
            return ArtifactPath.parse(below.strip("/"))
        except InvalidPath as exc:
            raise ApiError.invalid(exc.message) from None

    def browsable_root(self, artifact_uri: str) -> ArtifactPath | None:
        """`served_root`, when the UI can also link downloads to it (the artifact proxy API is on)."""
        return self.served_root(artifact_uri) if self.proxy else None

    def run_path(self, artifact_uri: str, relative: str) -> ArtifactPath:
        """Where `relative` (a path inside a run) is stored, when this server serves the run's root.

        501 when the run's artifacts live elsewhere (see `served_root`); 400 when either part is not
        a valid artifact path.
        """
        base = self.served_root(artifact_uri)
        if base is None:  # MLflow answers "Invalid path" for a bad path before it reads a location
            _relative_path(relative)
            raise ApiError(
                501,
                "NOT_IMPLEMENTED",
                f"This server does not serve artifacts stored at '{artifact_uri}'; the client reads "
                "them from that location directly",
            )
        return base.join(_relative_path(relative))

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


def _proxy_prefix(root: str) -> str:
    """The artifact proxy's own URL prefix in an http(s) root: what follows it is a path in the destination."""
    parts = urlsplit(root)
    return f"{parts.scheme}://{parts.netloc}{PROXY_PATH}"


def _relative_path(relative: str) -> ArtifactPath:
    try:
        return ArtifactPath.parse(relative)  # parsed alone, so a refusal describes the client's text
    except InvalidPath as exc:
        raise ApiError.invalid(exc.message) from None


LOCATIONS_KEY = web.AppKey("artifact_locations", ArtifactLocations)
