"""How fast the registry's UI pages render with 1,000 registered models of 10 versions each (issue 21).

Not a test: `.venv/bin/python benchmarks/registry_pages.py [--models 1000] [--versions 10] [--repeat 30]`.

Seeds a migrated SQLite store (the default) straight through SQL (the API would take minutes):
`--models` models, each with `--versions` versions spread over the stages, 2 model tags, 1 version
tag and an alias; then starts a real gateway and requests each page `--repeat` times after a
warm-up, as `benchmarks/ui_pages.py` does (server time from the gateway's access log). Writes
docs/benchmarks/registry.md.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ui_pages import measure

from tests.gateway_process import run_cli, run_gateway

STAGES = ("None", "Staging", "Production", "Archived")
REPORT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks" / "registry.md"


def seed(database: Path, models: int, versions: int) -> None:
    connection = sqlite3.connect(database)
    now = int(time.time() * 1000)
    model_rows, version_rows, model_tags, version_tags, aliases = [], [], [], [], []
    for index in range(models):
        model_id = index + 1
        model_rows.append((model_id, f"model-{index:05d}", now - index, now, f"model number {index}", versions + 1))
        model_tags += [
            (model_id, "team", ["vision", "growth", "search"][index % 3]),
            (model_id, "owner", f"u{index % 17}"),
        ]
        for number in range(1, versions + 1):
            created = now - (versions - number) * 60_000
            version_rows.append(
                (model_id, number, created, created, "", "bench", STAGES[number % 4], f"models:/m-{index}-{number}",
                 None, "", "READY", None, f"mlflow-artifacts:/bench/{index}/{number}", None)
            )  # fmt: skip
            version_tags.append((model_id, number, "validated", "yes" if number % 2 else "no"))
        aliases.append((model_id, "champion", versions))
    connection.executemany(
        "INSERT INTO registered_models (registered_model_id, name, creation_time, last_updated_time, description, "
        "next_version) VALUES (?, ?, ?, ?, ?, ?)",
        model_rows,
    )
    connection.executemany(
        "INSERT INTO model_versions (registered_model_id, version, creation_time, last_updated_time, description, "
        "user_id, current_stage, source, run_id, run_link, status, status_message, storage_location, model_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        version_rows,
    )
    connection.executemany("INSERT INTO registered_model_tags VALUES (?, ?, ?)", model_tags)
    connection.executemany("INSERT INTO model_version_tags VALUES (?, ?, ?, ?)", version_tags)
    connection.executemany("INSERT INTO registered_model_aliases VALUES (?, ?, ?)", aliases)
    connection.commit()
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=1000, help="registered models (1000)")
    parser.add_argument("--versions", type=int, default=10, help="versions of each model (10)")
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per page (30)")
    parser.add_argument("--report", type=Path, default=REPORT, help=f"markdown report ({REPORT})")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="registry-bench-") as scratch:
        workdir = Path(scratch)
        store = f"sqlite:///{workdir / 'mlruns.db'}"
        run_cli("migrate", "--backend-store-uri", store).check_returncode()
        seed(workdir / "mlruns.db", args.models, args.versions)
        last = max(1, (args.models + 99) // 100)
        pages = {
            "Models page 1 (100 models, latest versions, aliases, tags)": "/models",
            f"Models, last page ({last})": f"/models?page={last}",
            "Models searched by name (ILIKE)": "/models?q=model-009",
            "Models searched by tag (team=vision)": "/models?tag=team%3Dvision",
            f"one model ({args.versions} versions)": "/models/model-00042",
            "registered-models/search API (100 models)": "/api/2.0/mlflow/registered-models/search?max_results=100",
        }
        with run_gateway(workdir, "--backend-store-uri", store) as gateway:
            results = {name: measure(gateway, path, args.repeat) for name, path in pages.items()}
    lines = [
        "# Registry UI page times with many models",
        "",
        f"Measured {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({platform.processor() or platform.machine()}, {platform.python_version()}), by "
        f"`benchmarks/registry_pages.py --models {args.models} --versions {args.versions} --repeat {args.repeat}`: "
        f"{args.models:,} registered models of {args.versions} versions each (2 model tags, 1 version tag, one "
        "alias each), in SQLite; one gateway worker. Server time is the gateway's own `duration_ms` (access log) "
        "from request to last byte; client time adds loopback and reading the page. The last row is the "
        "gateway's registered-models/search API (what MLflow's browser UI calls) on the same data.",
        "",
        "| page | server p50 ms | server p95 ms | client p50 ms | client p95 ms | HTML KiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['server_p50']:.1f} | {r['server_p95']:.1f} | {r['client_p50']:.1f} | "
            f"{r['client_p95']:.1f} | {r['bytes'] / 1024:.0f} |"
        )
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
