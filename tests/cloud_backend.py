"""One S3 or Azure destination for a gateway under test, and a direct look inside it."""

from __future__ import annotations

import uuid

import pytest
from azure.storage.blob import BlobServiceClient

from tests.conftest import s3_client
from tests.storage_servers import AzureServer, S3Server


class Backend:
    """One cloud destination: how to point a gateway at it and how to look inside it directly."""

    def __init__(self, kind: str, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        self.name = f"g-{uuid.uuid4().hex[:16]}"
        if kind == "s3":
            self.s3: S3Server = request.getfixturevalue("s3_server")
            self.client = s3_client(self.s3)
            self.client.create_bucket(Bucket=self.name)
            self.uri = f"s3://{self.name}/root"
            self.env = {**self.s3.env(), "ARTIFACT_GATEWAY_S3_ADDRESSING_STYLE": "path"}
        else:
            self.azure: AzureServer = request.getfixturevalue("azure_server")
            self.service = BlobServiceClient.from_connection_string(self.azure.connection_string)
            self.service.create_container(self.name)
            self.uri = f"wasbs://{self.name}@{self.azure.account}.blob.core.windows.net/root"
            self.env = {"AZURE_STORAGE_CONNECTION_STRING": self.azure.connection_string}

    def stored_keys(self) -> list[str]:
        if self.kind == "s3":
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name)
            return sorted(item["Key"] for page in pages for item in page.get("Contents", []))
        return sorted(blob.name for blob in self.service.get_container_client(self.name).list_blobs())

    def open_uploads(self) -> list[str]:
        if self.kind == "s3":
            return [upload["Key"] for upload in self.client.list_multipart_uploads(Bucket=self.name).get("Uploads", [])]
        return []  # Azure: uncommitted blocks are never visible; keys() is the proof

    def read(self, key: str) -> bytes:
        if self.kind == "s3":
            return bytes(self.client.get_object(Bucket=self.name, Key=f"root/{key}")["Body"].read())
        return bytes(self.service.get_blob_client(self.name, f"root/{key}").download_blob().readall())

    def delete(self, key: str) -> None:
        """Delete an object directly, behind the gateway's back."""
        if self.kind == "s3":
            self.client.delete_object(Bucket=self.name, Key=f"root/{key}")
        else:
            self.service.get_blob_client(self.name, f"root/{key}").delete_blob()
