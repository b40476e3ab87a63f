"""`artifact-gateway import-mlflow`: plan (counts, conflicts, locations to move), write in
batches, verify. Exit codes: 0 done (or dry run), 1 verification failed, 2 bad source or store,
3 conflicting ids refused."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from sqlalchemy import inspect, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.import_mlflow import writer
from gateway.import_mlflow.file_source import FileSource
from gateway.import_mlflow.relocation import Relocation, local_path
from gateway.import_mlflow.rows import ENTITIES, Inventory, Rows, Source, SourceError
from gateway.import_mlflow.sql_source import SqlSource
from gateway.store import schema as s

OnConflict = Literal["fail", "skip"]
RUNS_PER_BATCH = 200
TRACES_PER_BATCH = 200
SAMPLED_HISTORIES = 20


@dataclass
class ImportOptions:
    source: str
    backend_store_uri: str
    dry_run: bool = False
    copy_artifacts_to: str | None = None
    on_conflict: OnConflict = "fail"
    points_per_batch: int = 50_000


@dataclass
class Plan:
    """What the store already holds of the source: the same entity (a resumed or repeated import) or
    a different one under the same id or name (a conflict)."""

    experiments: list[int] = field(default_factory=list)
    present_runs: set[str] = field(default_factory=set)
    present_models: set[str] = field(default_factory=set)
    present_traces: set[str] = field(default_factory=set)
    present_registered: set[str] = field(default_factory=set)
    conflicts: list[str] = field(default_factory=list)
    skipped: dict[str, set[Any]] = field(default_factory=dict)

    def conflict(self, kind: str, key: Any, message: str) -> None:
        self.conflicts.append(message)
        self.skipped.setdefault(kind, set()).add(key)


class Progress:
    """Counts per entity on stderr, one line rewritten in place on a terminal, a line a second otherwise."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.counts: dict[str, int] = {}
        self.started = time.monotonic()
        self._shown = 0.0
        self.tty = out.isatty()

    def add(self, entity: str, number: int, *, show: bool = False) -> None:
        self.counts[entity] = self.counts.get(entity, 0) + number
        now = time.monotonic()
        if show or now - self._shown >= (0.2 if self.tty else 1.0):
            self.show()
            self._shown = now

    def show(self, final: bool = False) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        points = self.counts.get("metric points", 0)
        text = ", ".join(f"{entity} {number:,}" for entity, number in self.counts.items())
        line = f"import-mlflow: {text} ({points / elapsed:,.0f} points/s)"
        if self.tty and not final:
            self.out.write(f"\r{line}\x1b[K")
        else:
            self.out.write(("\r" if self.tty else "") + line + "\n")
        self.out.flush()


async def open_source(uri: str) -> Source:
    """The MLflow store at `uri`: a database URI, or a file store directory (a path or file: URI)."""
    if "://" in uri and not uri.startswith("file:"):
        return await SqlSource.open(uri)
    path = local_path(uri) or Path(uri)
    return await FileSource.open(path.expanduser())


async def _existing(engine: AsyncEngine, column: Any, extra: Any, keys: list[Any]) -> dict[Any, Any]:
    found: dict[Any, Any] = {}
    async with engine.connect() as conn:
        for at in range(0, len(keys), 500):
            rows = await conn.execute(select(column, extra).where(column.in_(keys[at : at + 500])))
            found.update({row[0]: row[1] for row in rows})
    return found


async def _has_schema(engine: AsyncEngine) -> bool:
    """Whether the store has its tables (a dry run creates nothing, not even an empty SQLite file)."""
    if engine.dialect.name == "sqlite" and not await asyncio.to_thread(Path(engine.url.database or "").is_file):
        return False
    async with engine.connect() as conn:
        return await conn.run_sync(lambda sync: inspect(sync).has_table("experiments"))


async def plan(source: Source, engine: AsyncEngine | None, experiments: Rows) -> Plan:
    found = Plan()
    rows = experiments["experiments"]
    if engine is None:
        found.experiments = [row["experiment_id"] for row in rows]
        return found
    by_id = await _existing(
        engine, s.experiments.c.experiment_id, s.experiments.c.name, [r["experiment_id"] for r in rows]
    )
    by_name = await _existing(engine, s.experiments.c.name, s.experiments.c.experiment_id, [r["name"] for r in rows])
    for row in rows:
        number, name = row["experiment_id"], row["name"]
        if number in by_id and by_id[number] != name:
            found.conflict(
                "experiments",
                number,
                f"experiment {number} '{name}': the store's experiment {number} is '{by_id[number]}'",
            )
        elif name in by_name and by_name[name] != number:
            found.conflict(
                "experiments",
                number,
                f"experiment {number} '{name}': the store has '{name}' as experiment {by_name[name]}",
            )
        else:
            found.experiments.append(number)
    kept = found.experiments
    for kind, ids, column, attribute in (
        ("runs", await source.run_ids(kept), s.runs.c.run_uuid, s.runs.c.experiment_id),
        (
            "logged models",
            [r["model_id"] for r in (await source.logged_models(kept)).get("logged_models", [])],
            s.logged_models.c.model_id,
            s.logged_models.c.experiment_id,
        ),
        ("traces", await source.trace_ids(kept), s.trace_info.c.trace_id, s.trace_info.c.experiment_id),
    ):
        there = await _existing(engine, column, attribute, ids)
        if not there:
            continue
        # the same id in another experiment is someone else's; in the same experiment, an earlier import's
        owners = await _source_owners(source, kind, kept)
        for key, experiment_id in there.items():
            if owners.get(key) == experiment_id:
                {"runs": found.present_runs, "logged models": found.present_models, "traces": found.present_traces}[
                    kind
                ].add(key)
            else:
                found.conflict(kind, key, f"{kind[:-1]} {key}: the store has it in experiment {experiment_id}")
    names = {
        m["registered_models"][0]["name"]: m["registered_models"][0]["creation_time"]
        for m in await source.registered_models()
    }
    for name, created in (
        await _existing(engine, s.registered_models.c.name, s.registered_models.c.creation_time, list(names))
    ).items():
        if created == names[name]:
            found.present_registered.add(name)
        else:
            found.conflict(
                "registered models", name, f"registered model '{name}': the store has another model of that name"
            )
    return found


async def _source_owners(source: Source, kind: str, experiment_ids: list[int]) -> dict[str, int]:
    owners: dict[str, int] = {}
    for experiment_id in experiment_ids:
        if kind == "runs":
            owners.update({run_id: experiment_id for run_id in await source.run_ids([experiment_id])})
        elif kind == "traces":
            owners.update({trace_id: experiment_id for trace_id in await source.trace_ids([experiment_id])})
        else:
            owners.update(
                {
                    row["model_id"]: experiment_id
                    for row in (await source.logged_models([experiment_id])).get("logged_models", [])
                }
            )
    return owners


def _report_inventory(out: TextIO, title: str, inventory: Inventory) -> None:
    out.write(f"{title}\n")
    for entity in ENTITIES:
        out.write(f"  {entity:<18} {inventory.counts.get(entity, 0):>12,}\n")


async def _write_all(
    source: Source,
    engine: AsyncEngine,
    experiments: Rows,
    found: Plan,
    relocation: Relocation,
    progress: Progress,
    options: ImportOptions,
) -> list[str]:
    kept = set(found.experiments)
    skipped = found.skipped
    experiment_rows = [row for row in experiments["experiments"] if row["experiment_id"] in kept]
    for row in experiment_rows:
        row["artifact_location"] = relocation.rewrite(row["artifact_location"])
    async with engine.begin() as conn:
        await writer.write(
            conn,
            {
                "experiments": experiment_rows,
                "experiment_tags": [row for row in experiments["experiment_tags"] if row["experiment_id"] in kept],
            },
        )
    progress.add("experiments", len(experiment_rows))
    models = await source.logged_models(found.experiments)
    model_rows = [
        m
        for m in models.get("logged_models", [])
        if m["model_id"] not in found.present_models and m["model_id"] not in skipped.get("logged models", set())
    ]
    wanted = {m["model_id"] for m in model_rows}
    for at in range(0, len(model_rows), 500):
        batch = model_rows[at : at + 500]
        ids = {m["model_id"] for m in batch}
        for model in batch:
            model["artifact_location"] = await relocation.move(model["artifact_location"])
        async with engine.begin() as conn:
            await writer.write(
                conn,
                {
                    "logged_models": batch,
                    **{
                        name: [r for r in models.get(name, []) if r["model_id"] in ids]
                        for name in ("logged_model_tags", "logged_model_params")
                    },
                },
            )
        progress.add("logged models", len(batch))
    del wanted
    run_ids = [
        run_id
        for run_id in await source.run_ids(found.experiments)
        if run_id not in found.present_runs and run_id not in skipped.get("runs", set())
    ]
    for at in range(0, len(run_ids), RUNS_PER_BATCH):
        batch_ids = run_ids[at : at + RUNS_PER_BATCH]
        rows = await source.runs(batch_ids)
        for run in rows["runs"]:
            run["artifact_uri"] = await relocation.move(run["artifact_uri"])
        async with engine.begin() as conn:
            await writer.write(conn, rows)
            async for points in source.metric_points(batch_ids, options.points_per_batch):
                await writer.insert_points(conn, points)
                progress.add("metric points", len(points))
        progress.add("params", len(rows.get("params", [])))
        progress.add("runs", len(batch_ids), show=True)  # a line for each batch committed
    for model in await source.registered_models():
        name = model["registered_models"][0]["name"]
        if name in found.present_registered or name in skipped.get("registered models", set()):
            continue
        for version in model["model_versions"]:
            version["storage_location"] = relocation.rewrite(version["storage_location"])
            version["source"] = relocation.rewrite(version["source"])
        async with engine.begin() as conn:
            await writer.write_registered_model(conn, model)
        progress.add("registered models", 1)
    trace_ids = [
        trace_id
        for trace_id in await source.trace_ids(found.experiments)
        if trace_id not in found.present_traces and trace_id not in skipped.get("traces", set())
    ]
    for at in range(0, len(trace_ids), TRACES_PER_BATCH):
        rows = await source.traces(trace_ids[at : at + TRACES_PER_BATCH])
        for tag in rows["trace_tags"]:
            if tag["key"] == "mlflow.artifactLocation":
                tag["value"] = await relocation.move(tag["value"])
        async with engine.begin() as conn:
            await writer.write(conn, rows)
        progress.add("traces", len(rows["trace_info"]))
    await writer.advance_experiment_ids(engine)
    return run_ids


async def _analyze(engine: AsyncEngine, out: TextIO) -> None:
    """PostgreSQL's planner statistics for what was written: until autovacuum's analyze comes (up to a
    minute or more), the bench's run search took 70-87 ms on a database without them and 9-11 ms with
    them (benchmarks/RESULTS.md). SQLite keeps no statistics unless asked, and the gateway's queries
    are planned without them."""
    if engine.dialect.name != "postgresql":
        return
    out.write("import-mlflow: analyzing the tables for PostgreSQL's planner\n")
    async with engine.begin() as conn:
        await conn.exec_driver_sql("ANALYZE")


async def _verify(source: Source, engine: AsyncEngine, found: Plan, out: TextIO) -> bool:
    inventory = await source.inventory()
    names = [m["registered_models"][0]["name"] for m in await source.registered_models()]
    names = [name for name in names if name not in found.skipped.get("registered models", set())]
    ours = await writer.target_inventory(engine, found.experiments, names)
    out.write("verification (source -> store):\n")
    same = True
    for entity in ENTITIES:
        theirs, mine = inventory.counts.get(entity, 0), ours.counts.get(entity, 0)
        mark = "ok" if theirs == mine else "DIFFERENT"
        same = same and (theirs == mine or bool(found.skipped))
        out.write(f"  {entity:<18} {theirs:>12,} -> {mine:>12,}  {mark}\n")
    run_ids = await source.run_ids(found.experiments)
    sample = random.Random(0).sample(  # noqa: S311 - a sample to compare, not a secret
        run_ids, min(SAMPLED_HISTORIES, len(run_ids))
    )
    differing = []
    for run_id in sample:
        theirs_points = sorted(
            [(p[1], p[5], p[4], p[2], p[3]) async for batch in source.metric_points([run_id], 100_000) for p in batch]
        )
        if not _same_points(theirs_points, await writer.history(engine, run_id)):
            differing.append(run_id)
    out.write(f"  metric histories compared point by point: {len(sample)} runs, {len(differing)} different\n")
    for run_id in differing:
        out.write(f"    run {run_id}: its history differs\n")
    return same and not differing


def _same_points(left: list[tuple[Any, ...]], right: list[tuple[Any, ...]]) -> bool:
    """Same keys, steps, timestamps and NaN flags, and the same values where not NaN."""
    return len(left) == len(right) and all(
        a[:3] == b[:3] and a[4] == b[4] and (a[4] or a[3] == b[3]) for a, b in zip(left, right, strict=True)
    )


async def run_import(options: ImportOptions, out: TextIO = sys.stderr) -> int:
    from gateway.store.database import DatabaseError, create_engine, migrate

    try:
        source = await open_source(options.source)
    except SourceError as exc:
        out.write(f"artifact-gateway: error: {exc}\n")
        return 2
    engine: AsyncEngine | None = None
    try:
        try:
            engine = create_engine(options.backend_store_uri)
            if options.dry_run:
                if not await _has_schema(engine):
                    await engine.dispose()
                    engine = None
            else:
                await migrate(engine)
        except (DatabaseError, SQLAlchemyError, OSError) as exc:
            from gateway.store.startup import store_unusable

            out.write(f"artifact-gateway: error: {store_unusable(options.backend_store_uri, exc)}\n")
            return 2
        out.write(f"import-mlflow: reading {source.description}\n")
        experiments = await source.experiments()
        found = await plan(source, engine, experiments)
        local = {
            row["experiment_id"]: row["artifact_location"]
            for row in experiments["experiments"]
            if row["experiment_id"] in found.experiments and local_path(row["artifact_location"]) is not None
        }
        if options.dry_run:
            _report_inventory(out, "would import:", await source.inventory())
            already = len(found.present_runs)
            if already:
                out.write(f"  already in the store (an earlier import): {already:,} runs\n")
        for line in found.conflicts:
            out.write(f"conflict: {line}\n")
        if found.conflicts and options.on_conflict == "fail" and not options.dry_run:
            out.write(
                f"import-mlflow: {len(found.conflicts)} ids or names collide with the store's; nothing written. "
                "--on-conflict skip imports the rest and leaves these out\n"
            )
            return 3
        repository = None
        if local and options.copy_artifacts_to:
            from repositories import open_repository

            repository = open_repository(options.copy_artifacts_to)
            await repository.start()
        elif local:
            out.write(
                f"import-mlflow: {len(local)} experiments keep artifacts on local paths, which the gateway's location "
                "policy refuses; move them with --copy-artifacts-to DESTINATION "
                "(the gateway's --artifacts-destination):\n"
            )
            for experiment_id, location in sorted(local.items()):
                out.write(f"  experiment {experiment_id}: {location}\n")
        if options.dry_run or engine is None:
            return 0
        relocation = Relocation(local, repository)
        progress = Progress(out)
        try:
            await _write_all(source, engine, experiments, found, relocation, progress, options)
        finally:
            if repository is not None:
                await repository.close()
        progress.show(final=True)
        await _analyze(engine, out)
        if relocation.copied_files:
            out.write(
                f"import-mlflow: copied {relocation.copied_files:,} artifact files "
                f"({relocation.copied_bytes:,} bytes), each verified by SHA-256\n"
            )
        ok = await _verify(source, engine, found, out)
        out.write("import-mlflow: done\n" if ok else "import-mlflow: the store differs from the source (see above)\n")
        return 0 if ok else 1
    finally:
        await source.close()
        if engine is not None:
            await engine.dispose()


def main(options: ImportOptions) -> int:
    return asyncio.run(run_import(options))
