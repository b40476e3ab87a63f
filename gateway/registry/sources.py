"""Where a model version's files are: the `source` a client registers, checked and resolved.

A source is accepted when it names something this server tracks:

- `models:/m-<id>`: an MLflow 3 logged model (the client's `log_model(registered_model_name=...)`);
  its files are at the model's artifact location.
- `models:/<name>/<version>`: another registered version; its files are where that version's are.
- `runs:/<run_id>/<path>`: a path inside a run's artifacts.
- an artifact URI (`mlflow-artifacts:/...`, a bucket URI) that the location policy allows and that lies
  inside the artifacts of the run (`run_id`) or logged model (`model_id`) named with it.

A prompt version (tagged `mlflow.prompt.is_prompt = true`) has no files: its source must be one of
the placeholders MLflow's own senders use (`dummy-source`, `prompt-template`), as MLflow's server demands.

Anything else (a local path, `file:`, another host, a location no run or model of this server owns)
is refused with a 400, so a registered version never points the client's download somewhere the
server did not hand out. The storage location is what `get-download-uri` answers: the client
downloads the files from there (through the artifact proxy for `mlflow-artifacts:` locations).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from gateway.http.errors import ApiError
from gateway.locations import ArtifactLocations
from gateway.registry.store import RegistryStore
from gateway.store.errors import NotFound

_LOGGED_MODEL_ID = re.compile(r"m-[0-9A-Za-z_-]{1,62}")
_VERSION_SOURCE = re.compile(r"([^/]+)/([0-9]{1,10})")
PROMPT_SOURCES = frozenset({"dummy-source", "prompt-template"})
"""What MLflow's client and store send as a prompt version's source (mlflow/prompt/constants.py)."""


@dataclass(frozen=True, slots=True)
class ResolvedSource:
    source: str
    storage_location: str
    run_id: str | None
    model_id: str | None


def _refused(source: str, why: str) -> ApiError:
    return ApiError.invalid(f"Invalid model version source: '{source}'. {why}")


def _not_containing(source: str, id_name: str) -> ApiError:
    return _refused(source, f"The {id_name} request parameter must identify the resource that contains the source.")


def prompt_source(source: str, run_id: str | None, model_id: str | None) -> ResolvedSource:
    """A prompt version's placeholder source; anything else is refused as MLflow refuses it."""
    if source not in PROMPT_SOURCES:
        raise ApiError.invalid(f"Invalid prompt source: '{source}'. Prompt sources must use an MLflow placeholder.")
    return ResolvedSource(source, source, run_id, model_id)


def _inside(uri: str, root: str) -> bool:
    root = root.rstrip("/")
    return uri == root or uri.startswith(root + "/")


def _clean_path(source: str, path: str) -> str:
    """A path inside a run: relative, without `.` or `..` segments (before or after percent-decoding)."""
    for text in (path, unquote(path)):
        segments = text.split("/")
        if any(segment in (".", "..") for segment in segments) or "\\" in text or "\x00" in text:
            raise _refused(source, "It must not contain relative path segments ('.' or '..').")
    return posixpath.normpath(path).lstrip("/") if path.strip("/") else ""


async def resolve_source(
    store: RegistryStore,
    locations: ArtifactLocations,
    source: str,
    run_id: str | None,
    model_id: str | None,
) -> ResolvedSource:
    """`source` checked against what this server tracks, with the run and logged model it belongs to."""
    parts = urlsplit(source)
    scheme = parts.scheme.lower()
    if scheme in ("", "file") or (len(scheme) == 1 and source[1:3] in (":\\", ":/")):
        raise _refused(
            source,
            "This server does not register local paths or file: URIs; register a models:/ or runs:/ URI, "
            "or an artifact URI of a run or logged model it tracks.",
        )
    if parts.query or parts.fragment:
        raise _refused(source, "It must not carry a query or a fragment.")
    if scheme == "models":
        if parts.netloc:
            raise _refused(source, "Registered model sources must use the active model registry.")
        below = parts.path.strip("/")
        if _LOGGED_MODEL_ID.fullmatch(below):
            model = await store.source_model(below)
            if model is None:
                raise _refused(source, f"The logged model '{below}' does not exist.")
            if model_id and model_id != model.model_id:
                raise _not_containing(source, "model_id")
            return ResolvedSource(source, model.artifact_location, run_id or model.source_run_id, model.model_id)
        if match := _VERSION_SOURCE.fullmatch(below):
            try:
                version = await store.model_version_row(match.group(1), match.group(2))
            except NotFound as exc:
                raise _refused(source, exc.message) from None
            return ResolvedSource(
                f"models:/{version.name}/{version.version}",
                version.storage_location,
                run_id or version.run_id,
                model_id or version.model_id,
            )
        raise _refused(source, "A models:/ source is models:/m-<logged model id> or models:/<name>/<version>.")
    if scheme == "runs":
        if parts.netloc:
            raise _not_containing(source, "run_id")
        source_run_id, _, path = parts.path.lstrip("/").partition("/")
        if run_id and run_id != source_run_id:
            raise _not_containing(source, "run_id")
        run = await store.source_run(source_run_id) if source_run_id else None
        if run is None:
            raise _refused(source, f"The run '{source_run_id}' does not exist.")
        relative = _clean_path(source, path)
        location = f"{run.artifact_uri.rstrip('/')}/{relative}" if relative else run.artifact_uri
        return ResolvedSource(source, location, run.run_id, model_id)
    try:
        locations.validate(source)
    except ApiError:
        raise _refused(
            source, "It is not a location this server hands out (its artifact proxy, or a bucket of its runs)."
        ) from None
    _clean_path(source, parts.path)
    if model_id:
        model = await store.source_model(model_id)
        if model is None or not _inside(source, model.artifact_location):
            raise _not_containing(source, "model_id")
        return ResolvedSource(source, source, run_id or model.source_run_id, model.model_id)
    if run_id:
        run = await store.source_run(run_id)
        if run is not None and _inside(source, run.artifact_uri):
            return ResolvedSource(source, source, run.run_id, None)
    raise _not_containing(source, "run_id")
