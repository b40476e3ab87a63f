"""Adapter options, kept apart from the adapters so that configuring one imports no cloud SDK."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class S3Options:
    """How to reach the bucket; everything else comes from botocore's credential chain."""

    endpoint_url: str | None = None
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    checksums: Literal["when_supported", "when_required"] = "when_supported"
    region: str | None = None
    part_size: int = 8 * MIB
    max_parts_in_flight: int = 4
    max_proxied_part_size: int = 128 * MIB


@dataclass(frozen=True, slots=True)
class AzureOptions:
    """Credentials: a connection string, else an account key, else a SAS, else DefaultAzureCredential."""

    connection_string: str | None = None
    account_key: str | None = None
    sas_token: str | None = None
    api_version: str | None = None
    block_size: int = 8 * MIB
    max_blocks_in_flight: int = 4
    max_proxied_part_size: int = 128 * MIB
