"""The OpenAPI descriptions of the artifact routes: the mlflow-artifacts proxy, multipart uploads, folder
archives, and the run artifact routes MLflow's UI calls (see `gateway.http.openapi`)."""

from __future__ import annotations

from typing import Any

from gateway.artifacts import api as artifacts_api
from gateway.artifacts import archive, archive_api
from gateway.artifacts.multipart_api import MAX_PARTS
from gateway.http.openapi_schemas import (
    ARTIFACT_PATH,
    EMPTY_OK,
    INTEGER,
    MODEL_ID,
    PAGE_TOKEN,
    RUN_ID_QUERY,
    STRING,
    Operation,
    Operations,
    Schema,
    array,
    error,
    header,
    json_body,
    json_ok,
    obj,
    op,
    query,
    ref,
)

STORAGE_ERRORS: dict[str, Any] = {
    "502": error("The storage backend failed; the message carries its words"),
    "503": error("Too many uploads at once on this worker; retry after Retry-After", Retry_After=INTEGER),
    "507": error("The storage is full"),
}

DIRECTORY_PATH = {**ARTIFACT_PATH, "description": "the directory the file is uploaded to (may be empty)"}
DOWNLOAD_HEADERS = [
    header("Range", "one byte range, e.g. bytes=0-1023"),
    header("If-Range", "an ETag or HTTP date"),
    header("If-Match", "ETags"),
    header("If-None-Match", "ETags"),
    header("If-Modified-Since", "an HTTP date"),
    header("If-Unmodified-Since", "an HTTP date"),
]
DOWNLOAD_RESPONSE_HEADERS = {
    "ETag": {"schema": STRING},
    "Content-Disposition": {"schema": STRING},
    "Repr-Digest": {"schema": STRING, "description": "sha-256=:<base64>: when known"},
}
CONDITIONAL_RESPONSES: dict[str, Any] = {
    "206": {"description": "The requested range", "content": {"*/*": {"schema": {}}}},
    "304": {"description": "Not modified (If-None-Match, If-Modified-Since)"},
    "412": {"description": "A precondition failed (If-Match, If-Unmodified-Since)"},
    "416": {"description": "The range cannot be satisfied", "headers": {"Content-Range": {"schema": STRING}}},
}
MULTIPART_OFF = {"501": error("Multipart upload is off on this server (--multipart-upload off)")}

ARTIFACTS: dict[tuple[str, str], Operation] = {
    ("PUT", "/artifacts/{path}"): op(
        "Upload a file: the raw body is streamed to storage and appears atomically",
        json_ok(
            obj(
                {"path": STRING, "file_size": {"type": "integer"}, "sha256": {"type": "string", "nullable": True}},
                ("path", "file_size"),
            )
        ),
        tag="artifacts",
        parameters=[
            ARTIFACT_PATH,
            header("Content-MD5", "base64 MD5 of the body; a mismatch is 400 and nothing is stored"),
            header("Repr-Digest", "sha-256=:<base64>: of the body (RFC 9530); a mismatch is 400"),
            header(
                "Want-Repr-Digest",
                "sha-256=1 asks for the digest in this answer where it is not computed by default: S3 multipart"
                " objects, and bodies over 1 MiB on local disk (hashed just after the answer, then on GET and HEAD)",
            ),
        ],
        requestBody={
            "required": False,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            "description": "the file's bytes, whatever the Content-Type",
        },
        more_responses={**STORAGE_ERRORS},
    ),
    ("GET", "/artifacts/{path}"): op(
        "Download a file (Range and conditional requests honoured)",
        {
            "description": "The file; Content-Type from the name",
            "content": {"*/*": {"schema": {}}},
            "headers": DOWNLOAD_RESPONSE_HEADERS,
        },
        tag="artifacts",
        parameters=[ARTIFACT_PATH, *DOWNLOAD_HEADERS],
        more_responses={
            **CONDITIONAL_RESPONSES,
            "307": {"description": "With --artifacts-redirect: a presigned storage URL in Location"},
            "502": STORAGE_ERRORS["502"],
        },
    ),
    ("HEAD", "/artifacts/{path}"): op(
        "A file's download headers, no body",
        {"description": "The headers a GET would have", "headers": DOWNLOAD_RESPONSE_HEADERS},
        tag="artifacts",
        parameters=[ARTIFACT_PATH, *DOWNLOAD_HEADERS],
        more_responses={**CONDITIONAL_RESPONSES, "502": {"description": "The storage backend failed"}},
    ),
    ("DELETE", "/artifacts/{path}"): op(
        "Delete a file or a whole directory (deleting nothing is fine; the root is refused)",
        EMPTY_OK,
        tag="artifacts",
        parameters=[ARTIFACT_PATH],
        more_responses={"502": STORAGE_ERRORS["502"]},
    ),
    ("GET", "/artifacts"): op(
        "List one level of a directory",
        json_ok(obj({"files": array(ref("FileInfo")), "next_page_token": STRING})),
        tag="artifacts",
        parameters=[
            query("path", STRING, "the directory (default: the root)"),
            query(
                "max_results",
                {"type": "integer", "minimum": 1, "maximum": artifacts_api.MAX_PAGE_SIZE},
                "page the listing (unpaged when absent)",
            ),
            query("page_token", PAGE_TOKEN),
        ],
        more_responses={"502": STORAGE_ERRORS["502"]},
    ),
    ("POST", "/mpu/create/{path}"): op(
        "Start a multipart upload of <path>/<basename of body.path>; returns part URLs",
        json_ok(
            obj(
                {
                    "upload_id": STRING,
                    "credentials": array(
                        obj(
                            {"url": STRING, "part_number": {"type": "integer"}, "headers": {"type": "object"}},
                            ("url", "part_number"),
                        )
                    ),
                },
                ("upload_id", "credentials"),
            )
        ),
        tag="multipart",
        parameters=[DIRECTORY_PATH],
        requestBody=json_body(
            obj(
                {
                    "path": {"type": "string", "minLength": 1, "description": "the client's local file path"},
                    "num_parts": {"type": "integer", "minimum": 0, "maximum": MAX_PARTS, "default": 0},
                },
                ("path",),
            )
        ),
        more_responses={**MULTIPART_OFF, "502": STORAGE_ERRORS["502"]},
    ),
    ("POST", "/mpu/complete/{path}"): op(
        "Complete a multipart upload from its parts' ETags",
        EMPTY_OK,
        tag="multipart",
        parameters=[DIRECTORY_PATH],
        requestBody=json_body(
            obj(
                {
                    "path": {"type": "string", "minLength": 1},
                    "upload_id": {"type": "string", "minLength": 1},
                    "parts": array(
                        obj(
                            {"part_number": {"type": "integer"}, "etag": STRING, "url": STRING},
                            ("part_number", "etag"),
                        ),
                        minItems=1,
                    ),
                },
                ("path", "upload_id", "parts"),
            )
        ),
        more_responses={**MULTIPART_OFF, **STORAGE_ERRORS},
    ),
    ("POST", "/mpu/abort/{path}"): op(
        "Abort a multipart upload (idempotent)",
        EMPTY_OK,
        tag="multipart",
        parameters=[DIRECTORY_PATH],
        requestBody=json_body(
            obj(
                {"path": {"type": "string", "minLength": 1}, "upload_id": {"type": "string", "minLength": 1}},
                ("path", "upload_id"),
            )
        ),
        more_responses={**MULTIPART_OFF, "502": STORAGE_ERRORS["502"]},
    ),
    ("PUT", "/mpu/part"): op(
        "Upload one part to a gateway part URL; the signed token in the URL is the credential",
        {
            **json_ok(obj({"part_number": {"type": "integer"}, "etag": STRING}, ("part_number", "etag"))),
            "headers": {"ETag": {"schema": STRING}},
        },
        tag="multipart",
        requestBody={
            "required": False,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        },
        more_responses={**MULTIPART_OFF, **STORAGE_ERRORS},
    ),
    ("GET", "/presigned/{path}"): op(
        "A presigned storage URL for downloading a file in ranges (MLflow's multipart download)",
        json_ok(
            obj(
                {"url": STRING, "headers": {"type": "object"}, "file_size": {"type": "integer"}},
                ("url", "file_size"),
            )
        ),
        tag="artifacts",
        parameters=[ARTIFACT_PATH],
        more_responses={
            "501": error("Presigned downloads are off, or the destination cannot presign (local disk)"),
            "502": STORAGE_ERRORS["502"],
        },
    ),
}

ARCHIVE_OK = {
    "description": "The folder as one archive, streamed (chunked, no Content-Length); entries under a top "
    "directory named after the folder. A storage failure mid-way closes the connection, leaving an archive "
    "without its end that extractors reject.",
    "content": {
        archive.FORMATS[name].content_type: {"schema": {"type": "string", "format": "binary"}}
        for name in archive.FORMATS
    },
    "headers": {"Content-Disposition": {"schema": STRING, "description": "attachment; filename=<folder>.<format>"}},
}
ARCHIVE_FORMAT = query(
    "format",
    {"type": "string", "enum": list(archive.FORMATS), "default": archive_api.DEFAULT_FORMAT},
    "zip (entries stored, ZIP64 where needed) or tar.gz (PAX headers, gzip)",
)


def archive_op(summary: str, parameters: list[Schema]) -> Operation:
    return op(
        summary,
        ARCHIVE_OK,
        tag="artifacts",
        parameters=[*parameters, ARCHIVE_FORMAT],
        more_responses={"502": STORAGE_ERRORS["502"]},
    )


ARTIFACTS.update(
    {
        ("GET", "/archive"): archive_op(f"Download the whole artifact root as {archive.ROOT_NAME}.zip or .tar.gz", []),
        ("GET", "/archive/{path}"): archive_op(
            "Download a folder as one zip or tar.gz archive (404 when it does not exist or is empty, 400 for a file)",
            [{**ARTIFACT_PATH, "description": "the folder, percent-decoded once; empty or '/'-ended is fine"}],
        ),
    }
)

RUN_ARTIFACT = op(
    "The MLflow UI's download of one file of a run (Range and conditional requests honoured)",
    {
        "description": "The file as an attachment; Content-Type from the name, as MLflow guesses it",
        "content": {"*/*": {"schema": {}}},
        "headers": DOWNLOAD_RESPONSE_HEADERS,
    },
    tag="tracking",
    parameters=[
        *RUN_ID_QUERY,
        query("path", {"type": "string", "minLength": 1}, "the file's path inside the run's artifacts", required=True),
        *DOWNLOAD_HEADERS,
    ],
    more_responses={
        **CONDITIONAL_RESPONSES,
        "501": error("The run's artifacts are not stored by this server (a bucket, or --no-serve-artifacts)"),
        "502": STORAGE_ERRORS["502"],
    },
)

MODEL_VERSION_ARTIFACT = {
    **RUN_ARTIFACT,
    "summary": "MLflow's UI route: one file of a registered model version, as an attachment",
    "tags": ["registry"],
    "parameters": [
        query("name", {"type": "string", "minLength": 1}, "the registered model's name", required=True),
        query("version", {"type": "string", "minLength": 1}, "the version number", required=True),
        query("path", {"type": "string", "minLength": 1}, "the file's path inside the version's files", required=True),
        *DOWNLOAD_HEADERS,
    ],
}
LOGGED_MODEL_FILE = {
    **RUN_ARTIFACT,
    "summary": "MLflow's UI route (under /ajax-api only): one file of a logged model, as an attachment",
    "parameters": [
        MODEL_ID,
        query("artifact_file_path", {"type": "string", "minLength": 1}, "the file inside the model", required=True),
        *DOWNLOAD_HEADERS,
    ],
}
LOGGED_MODEL_DIRECTORY = op(
    "One level of a logged model's artifacts, paths relative to the model's artifact root",
    json_ok(obj({"root_uri": STRING, "files": array(ref("FileInfo"))}, ("root_uri",))),
    tag="tracking",
    parameters=[
        MODEL_ID,
        query("artifact_directory_path", STRING, "a directory under the model's artifact root (default: the root)"),
    ],
    more_responses={
        "501": error("The model's artifacts are not stored by this server (a bucket, or --no-serve-artifacts)"),
        "502": STORAGE_ERRORS["502"],
    },
)
UPLOAD_ARTIFACT = op(
    "MLflow's UI route (under /ajax-api only): upload one small file (at most 10 MiB) into a run",
    EMPTY_OK,
    tag="tracking",
    parameters=[
        query("run_uuid", {"type": "string", "minLength": 1}, required=True),
        query("path", {"type": "string", "minLength": 1}, "the file's path inside the run's artifacts", required=True),
    ],
    requestBody={
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
    more_responses={
        "501": error("The run's artifacts are not stored by this server (a bucket, or --no-serve-artifacts)"),
        **STORAGE_ERRORS,
    },
)

# Keyed by (API family, METHOD, path below the family's prefix).
OPERATIONS: Operations = {
    **{("artifacts", method, path): operation for (method, path), operation in ARTIFACTS.items()},
    ("", "GET", "/get-artifact"): RUN_ARTIFACT,  # a literal: gateway.artifacts.run_artifacts loads the database stack
    ("", "GET", "/model-versions/get-artifact"): MODEL_VERSION_ARTIFACT,
    ("tracking", "GET", "/logged-models/{model_id}/artifacts/files"): LOGGED_MODEL_FILE,
    ("tracking", "GET", "/logged-models/{model_id}/artifacts/directories"): LOGGED_MODEL_DIRECTORY,
    ("tracking", "POST", "/upload-artifact"): UPLOAD_ARTIFACT,
}
