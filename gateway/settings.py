"""All settings, from (highest first) command-line flags, the environment, a TOML config file.

Every setting has an `ARTIFACT_GATEWAY_<NAME>` variable; those that `mlflow server` also has
accept MLflow's variable too (`MLFLOW_PORT`, `MLFLOW_ARTIFACTS_DESTINATION`, ...), so a deployment
can swap the binary without touching its environment.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "ARTIFACT_GATEWAY_"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _env(name: str, *, mlflow: str | None = None) -> AliasChoices:
    names = [f"{ENV_PREFIX}{name}"] + ([mlflow] if mlflow else [])
    return AliasChoices(*names)


class Settings(BaseSettings):
    """The gateway's configuration. Field descriptions double as `--help` text."""

    model_config = SettingsConfigDict(
        validate_by_name=True, validate_by_alias=True, extra="forbid", case_sensitive=False
    )

    host: str = Field(
        "127.0.0.1",
        validation_alias=_env("HOST", mlflow="MLFLOW_HOST"),
        description="Address to listen on. Use 0.0.0.0 to accept other machines.",
    )
    port: int = Field(
        5000,
        ge=0,
        le=65535,
        validation_alias=_env("PORT", mlflow="MLFLOW_PORT"),
        description="TCP port to listen on (0 picks a free one and logs it).",
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        validation_alias=_env("WORKERS", mlflow="MLFLOW_WORKERS"),
        description="Worker processes sharing the port; about one per core.",
    )
    artifacts_destination: str = Field(
        "./mlartifacts",
        validation_alias=_env("ARTIFACTS_DESTINATION", mlflow="MLFLOW_ARTIFACTS_DESTINATION"),
        description="Where proxied artifacts are stored: a directory or file: URI.",
    )
    artifacts_only: bool = Field(
        False,
        validation_alias=_env("ARTIFACTS_ONLY", mlflow="MLFLOW_ARTIFACTS_ONLY"),
        description="Serve only the artifact API; tracking routes answer a clear error.",
    )
    serve_artifacts: bool = Field(
        True,
        validation_alias=_env("SERVE_ARTIFACTS", mlflow="MLFLOW_SERVE_ARTIFACTS"),
        description="Serve the mlflow-artifacts proxy routes.",
    )
    ui: bool = Field(
        True,
        validation_alias=_env("UI"),
        description="Serve the web UI at /: experiments, runs, charts, comparison and the artifact browser "
        "(only the artifact browser with --artifacts-only). --no-ui leaves the APIs only.",
    )
    backend_store_uri: str = Field(
        "sqlite:///mlruns.db",
        validation_alias=_env("BACKEND_STORE_URI", mlflow="MLFLOW_BACKEND_STORE_URI"),
        description="Metadata store for experiments and runs: sqlite:///path.db (created on first start) "
        "or postgresql://user:password@host/db.",
    )
    default_artifact_root: str | None = Field(
        None,
        validation_alias=_env("DEFAULT_ARTIFACT_ROOT", mlflow="MLFLOW_DEFAULT_ARTIFACT_ROOT"),
        description="Artifact root for new experiments (default mlflow-artifacts:/ when serving artifacts).",
    )
    truncate_long_values: bool = Field(
        True,
        validation_alias=_env("TRUNCATE_LONG_VALUES", mlflow="MLFLOW_TRUNCATE_LONG_VALUES"),
        description="Cut run param values over 6,000 and run tag values over 8,000 characters to that length "
        "(logged as a warning) instead of refusing them with 400, as MLflow does by default.",
    )
    fsync: bool = Field(
        True,
        validation_alias=_env("FSYNC"),
        description="Flush each uploaded file (and its directory) to disk before answering 200.",
    )
    s3_endpoint_url: str | None = Field(
        None,
        validation_alias=_env("S3_ENDPOINT_URL", mlflow="MLFLOW_S3_ENDPOINT_URL"),
        description="S3-compatible endpoint (default: AWS, or AWS_ENDPOINT_URL).",
    )
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        "auto",
        validation_alias=_env("S3_ADDRESSING_STYLE"),
        description="S3 bucket addressing: path for most S3-compatible servers.",
    )
    s3_checksums: Literal["when_supported", "when_required"] = Field(
        "when_supported",
        validation_alias=_env("S3_CHECKSUMS"),
        description="botocore request checksums; when_required for S3-compatible servers that reject them.",
    )
    upload_part_size_mib: int = Field(
        8,
        ge=5,
        le=5120,
        validation_alias=_env("UPLOAD_PART_SIZE_MIB"),
        description="Part (S3) or block (Azure) size for streamed uploads, in MiB.",
    )
    upload_parts_in_flight: int = Field(
        4,
        ge=1,
        le=64,
        validation_alias=_env("UPLOAD_PARTS_IN_FLIGHT"),
        description="Parts of one upload sent at once; memory per upload is about size x this.",
    )
    azure_api_version: str | None = Field(
        None,
        validation_alias=_env("AZURE_API_VERSION"),
        description="Azure Storage API version to request (for emulators that lag behind).",
    )
    multipart_upload: Literal["proxy", "direct", "off"] = Field(
        "proxy",
        validation_alias=_env("MULTIPART_UPLOAD"),
        description="How MLflow's multipart uploads send parts: proxy (through the gateway, signed part URLs), "
        "direct (presigned S3 / SAS Azure URLs; clients must reach the storage), or off.",
    )
    local_multipart_uploads: bool = Field(
        False,
        validation_alias=_env("LOCAL_MULTIPART_UPLOADS"),
        description="On local disk, tell MLflow's client in server-info to send large files as multipart uploads "
        "(the routes work either way). Off: it sends one streamed PUT, which is faster there; on only behind a "
        "proxy that caps a request's size.",
    )
    signing_key: str | None = Field(
        None,
        validation_alias=_env("SIGNING_KEY"),
        description="Secret that signs part URLs; set the same value on every replica (default: random per start).",
    )
    part_url_ttl_seconds: int = Field(
        3600,
        ge=60,
        le=7 * 86400,
        validation_alias=_env("PART_URL_TTL_SECONDS"),
        description="How long a multipart part URL stays valid.",
    )
    max_proxied_part_size_mib: int = Field(
        128,
        ge=5,
        le=5120,
        validation_alias=_env("MAX_PROXIED_PART_SIZE_MIB"),
        description="Largest part accepted through a gateway part URL for S3/Azure (held in memory while sent).",
    )
    presigned_downloads: bool = Field(
        False,
        validation_alias=_env("PRESIGNED_DOWNLOADS"),
        description="Offer presigned S3/Azure download URLs (MLflow's multipart download); clients must reach the "
        "storage.",
    )
    artifacts_redirect: bool = Field(
        False,
        validation_alias=_env("ARTIFACTS_REDIRECT"),
        description="Answer artifact GETs with a redirect to a short-lived S3/Azure URL instead of streaming.",
    )
    presigned_url_ttl_seconds: int = Field(
        300,
        ge=1,
        le=604800,
        validation_alias=_env("PRESIGNED_URL_TTL_SECONDS"),
        description="Lifetime of presigned download URLs and redirects.",
    )
    public_url: str | None = Field(
        None,
        validation_alias=_env("PUBLIC_URL"),
        description=(
            "External base URL (https://host:port) when behind a proxy that rewrites Host or ends TLS: "
            "part URLs, and the web UI's check of a form's Origin."
        ),
    )
    allowed_hosts: str | None = Field(
        None,
        validation_alias=_env("ALLOWED_HOSTS", mlflow="MLFLOW_SERVER_ALLOWED_HOSTS"),
        description="Host names clients may reach this server by, comma-separated, besides localhost, IP "
        "addresses and --public-url's host (a request naming another Host is refused: DNS rebinding). "
        "Patterns: *.example.com; a port (name:8443) for one port only; * allows any Host.",
    )
    webhook_allowed_hosts: str | None = Field(
        None,
        validation_alias=_env("WEBHOOK_ALLOWED_HOSTS"),
        description="Registry webhook destinations allowed besides public https hosts, comma-separated host names, "
        "addresses or networks (hooks.internal, 10.0.0.0/8): these may be loopback, private or link-local and "
        "may use http. None: a webhook must be https to a host resolving only to public addresses.",
    )
    webhook_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        validation_alias=_env("WEBHOOK_TIMEOUT_SECONDS"),
        description="Give up one webhook delivery attempt (connect, send, answer) after this long; it is retried "
        "with backoff.",
    )
    staging_ttl_seconds: float = Field(
        3600.0,
        gt=0,
        validation_alias=_env("STAGING_TTL_SECONDS"),
        description="Remove unfinished uploads (staging files, multipart uploads) untouched for this long.",
    )
    shutdown_timeout_seconds: float = Field(
        30.0,
        ge=0,
        validation_alias=_env("SHUTDOWN_TIMEOUT_SECONDS"),
        description="On SIGTERM, let in-flight requests finish for up to this long.",
    )
    max_upload_size_mib: int = Field(
        0,
        ge=0,
        validation_alias=_env("MAX_UPLOAD_SIZE_MIB"),
        description="Refuse an upload larger than this with 413 (multipart: each part, and the total at completion); "
        "0: no limit.",
    )
    max_concurrent_uploads: int = Field(
        32,
        ge=0,
        validation_alias=_env("MAX_CONCURRENT_UPLOADS"),
        description="Uploads one worker receives at once; more get 503 with Retry-After (clients retry). 0: no limit.",
    )
    max_archive_entries: int = Field(
        100_000,
        ge=0,
        validation_alias=_env("MAX_ARCHIVE_ENTRIES"),
        description="Most files and folders in one folder archive (GET .../archive/<folder>); a larger folder is "
        "refused with 400 before the first byte. 0: no limit.",
    )
    client_idle_timeout_seconds: float = Field(
        60.0,
        gt=0,
        validation_alias=_env("CLIENT_IDLE_TIMEOUT_SECONDS"),
        description="Abandon an upload (408) when its client sends nothing for this long; long transfers are fine.",
    )
    request_head_timeout_seconds: float = Field(
        10.0,
        gt=0,
        validation_alias=_env("REQUEST_HEAD_TIMEOUT_SECONDS"),
        description="Close a connection whose request line and headers are not complete this long after their "
        "first byte (a client sending its headers a byte at a time).",
    )
    keepalive_timeout_seconds: float = Field(
        75.0,
        gt=0,
        validation_alias=_env("KEEPALIVE_TIMEOUT_SECONDS"),
        description="Close a connection idle this long: no request under way and nothing received since it "
        "opened or since its last answer. Keep it above a reverse proxy's own idle timeout (often 60 s).",
    )
    json_body_timeout_seconds: float = Field(
        30.0,
        gt=0,
        validation_alias=_env("JSON_BODY_TIMEOUT_SECONDS"),
        description="Answer 408 and close the connection when a JSON or form body (tracking API, multipart "
        "create/complete/abort, UI forms) has not fully arrived this long after its request's headers.",
    )
    max_connections: int = Field(
        1000,
        ge=1,
        validation_alias=_env("MAX_CONNECTIONS"),
        description="Open connections per worker; a new one past this closes the longest idle one, or gets 503 "
        "when none is idle. Lowered at start to what the open-file limit (ulimit -n) allows.",
    )
    auth: bool = Field(
        False,
        validation_alias=_env("AUTH"),
        description="Require a credential on every route but /health, /health/ready and /version: "
        "HTTP Basic (a user) or Bearer (a token), managed with `artifact-gateway users` and `tokens`, "
        "kept in the backend store.",
    )
    failed_login_limit: int = Field(
        10,
        ge=0,
        validation_alias=_env("FAILED_LOGIN_LIMIT"),
        description="Login attempts failed or under way one client address may have per minute (per worker) "
        "before it gets 429; an attempt counts before its check and is refunded if it succeeds. 0: no limit.",
    )
    trusted_proxies: str | None = Field(
        None,
        validation_alias=_env("TRUSTED_PROXIES"),
        description="Comma-separated addresses or networks of reverse proxies in front of the server "
        "(e.g. 10.0.0.0/8): from them X-Forwarded-For names the client, for the login limits, access log and "
        "audit lines. None: the header is ignored and the peer's address is used.",
    )
    tls_cert: str | None = Field(
        None,
        validation_alias=_env("TLS_CERT"),
        description="PEM certificate (chain) to serve HTTPS with; needs --tls-key.",
    )
    tls_key: str | None = Field(
        None,
        validation_alias=_env("TLS_KEY"),
        description="PEM private key of --tls-cert.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", validation_alias=_env("LOG_LEVEL"), description="Least severe log level written."
    )

    @model_validator(mode="after")
    def _consistent_modes(self) -> Settings:
        if self.artifacts_only and not self.serve_artifacts:
            raise ValueError("--artifacts-only needs artifact serving; drop --no-serve-artifacts")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("HTTPS needs both --tls-cert and --tls-key")
        try:
            parse_networks(self.trusted_proxies)
        except ValueError as exc:
            raise ValueError(f"invalid --trusted-proxies: {exc}") from None
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls)


def parse_networks(text: str | None) -> tuple[Network, ...]:
    """`10.0.0.0/8, 192.168.1.7, ::1` as networks; `ValueError` naming the entry that is not one."""
    networks = []
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"'{item}' is not an IP address or network (such as 10.0.0.0/8)") from None
    return tuple(networks)


class SettingsError(Exception):
    """A setting is invalid; the message is one line meant for the operator."""


def load_settings(overrides: dict[str, Any], config_file: Path | None = None) -> Settings:
    """Build settings from flags (`overrides`), the environment and an optional TOML file."""
    if config_file is not None and not config_file.is_file():
        raise SettingsError(f"config file '{config_file}' does not exist")

    class FileSettings(Settings):
        model_config = SettingsConfigDict(toml_file=config_file)

    try:
        return FileSettings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as exc:
        raise SettingsError(_one_line(exc)) from None
    except ValueError as exc:  # unreadable TOML
        raise SettingsError(f"config file '{config_file}': {exc}") from None


def _one_line(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        if not field:
            problems.append(str(error["msg"]).removeprefix("Value error, "))
            continue
        name = field.upper().removeprefix(ENV_PREFIX).lower()
        if error["type"] == "extra_forbidden":
            problems.append(f"unknown setting '{field}' (see artifact-gateway serve --help)")
            continue
        given = f" (got {error['input']!r})" if "input" in error and not isinstance(error["input"], dict) else ""
        hint = f"--{name.replace('_', '-')} / {ENV_PREFIX}{name.upper()}"
        problems.append(f"invalid {name} [{hint}]: {error['msg']}{given}")
    return "; ".join(problems)
