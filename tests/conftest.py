from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway_process import RunningGateway, run_gateway


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    """One gateway per test module, proxied mode on local disk."""
    with run_gateway(tmp_path_factory.mktemp("gateway")) as running:
        yield running


@pytest.fixture
def fresh_dir() -> str:
    """A destination-relative directory name unique to this test."""
    return f"t-{uuid.uuid4().hex[:12]}"


def tree_snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under `root` with file contents (None for directories); gateway logs excluded."""
    return {
        str(path.relative_to(root)): (None if path.is_dir() else path.read_bytes())
        for path in sorted(root.rglob("*"))
        if path.suffix != ".log"
    }
