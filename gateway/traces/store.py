"""The tracing part of the metadata store: trace infos, their tags and request metadata, spans.

Times are milliseconds since the epoch (request_time, execution_duration) as MLflow's SQL store keeps
them; spans keep their OpenTelemetry form (protobuf JSON) and nanosecond times. Errors are the
store's own (`gateway.store.errors`).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.store import schema as s
from gateway.store.errors import InvalidValue, NotFound
from gateway.store.pages import offset_token, page_offset
from gateway.traces.limits import MAX_LINKS_PER_REQUEST, MAX_PREVIEW
from gateway.traces.search_filter import TRACE, Clause, condition, order_columns

SPANS_LOCATION = "mlflow.trace.spansLocation"
ARTIFACT_LOCATION = "mlflow.artifactLocation"
RUN = "RUN"
PROMPT_VERSION = "PROMPT_VERSION"
TRACKING_STORE = "TRACKING_STORE"
STATES = ("STATE_UNSPECIFIED", "OK", "ERROR", "IN_PROGRESS")


@dataclass
class TraceInfo:
    """A trace's info as the client starts it (times in milliseconds)."""

    trace_id: str
    experiment_id: int
    request_time: int
    execution_duration: int | None
    state: str
    request_preview: str | None = None
    response_preview: str | None = None
    client_request_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class SpanRow:
    """One span as stored: its ids, times, status and its OpenTelemetry JSON (`content`)."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    start_ns: int
    end_ns: int | None
    status: str
    content: str


def _insert(conn: AsyncConnection, table: Any) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


async def _upsert_pairs(conn: AsyncConnection, table: Any, trace_id: str, pairs: dict[str, str]) -> None:
    for key, value in pairs.items():
        statement = _insert(conn, table).values(trace_id=trace_id, key=key, value=value)
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=["trace_id", "key"], set_={"value": statement.excluded.value}
            )
        )


def _timestamp(ms: int) -> str:
    """Protobuf JSON's Timestamp (RFC 3339, UTC) for milliseconds since the epoch."""
    import datetime

    moment = datetime.datetime.fromtimestamp(ms // 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def _duration(ms: int) -> str:
    """Protobuf JSON's Duration for milliseconds."""
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    return f"{sign}{ms // 1000}.{ms % 1000:03d}s"


def _experiment_id(value: object) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise InvalidValue(f"Invalid experiment ID '{value}'. Experiment ID must be a valid integer.") from None
    if not 0 <= number < 2**63:
        raise NotFound(f"No Experiment with id={value} exists")
    return number


class TraceStore:
    """Traces over one async SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def _check_experiment(self, conn: AsyncConnection, experiment_id: int) -> None:
        row = (
            await conn.execute(
                select(s.experiments.c.lifecycle_stage).where(s.experiments.c.experiment_id == experiment_id)
            )
        ).first()
        if row is None:
            raise NotFound(f"No Experiment with id={experiment_id} exists")

    async def start_trace(self, info: TraceInfo) -> dict[str, Any]:
        """Store the trace's info (spans may have come first: the info then completes their trace)."""
        info.tags[SPANS_LOCATION] = TRACKING_STORE
        values = {
            "experiment_id": info.experiment_id,
            "request_time": info.request_time,
            "execution_duration": info.execution_duration,
            "state": info.state,
            "request_preview": (info.request_preview or "")[:MAX_PREVIEW] or None,
            "response_preview": (info.response_preview or "")[:MAX_PREVIEW] or None,
            "client_request_id": info.client_request_id,
        }
        _experiment_id(info.experiment_id)  # beyond 64 bits: not found, before the database sees it
        async with self.engine.begin() as conn:
            await self._check_experiment(conn, info.experiment_id)
            statement = _insert(conn, s.trace_info).values(trace_id=info.trace_id, **values)
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["trace_id"], set_={name: statement.excluded[name] for name in values}
                )
            )
            await _upsert_pairs(conn, s.trace_tags, info.trace_id, info.tags)
            await _upsert_pairs(conn, s.trace_request_metadata, info.trace_id, info.metadata)
            return (await self._infos(conn, [info.trace_id]))[0]

    async def log_spans(self, experiment_id: object, spans: list[SpanRow]) -> None:
        """Store `spans` (all or none); a trace not started yet gets its info from its spans."""
        experiment = _experiment_id(experiment_id)
        async with self.engine.begin() as conn:
            await self._check_experiment(conn, experiment)
            by_trace: dict[str, list[SpanRow]] = {}
            for span in spans:
                by_trace.setdefault(span.trace_id, []).append(span)
            for trace_id, group in by_trace.items():
                start = min(span.start_ns for span in group)
                root = next((span for span in group if span.parent_span_id is None), None)
                ends = [span.end_ns for span in group if span.end_ns is not None]
                state = "IN_PROGRESS" if root is None else ("ERROR" if root.status == "ERROR" else "OK")
                duration = (max(ends) - start) // 1_000_000 if ends and root is not None else None
                await conn.execute(
                    _insert(conn, s.trace_info)
                    .values(
                        trace_id=trace_id,
                        experiment_id=experiment,
                        request_time=start // 1_000_000,
                        execution_duration=duration,
                        state=state,
                    )
                    .on_conflict_do_nothing(index_elements=["trace_id"])
                )
                await _upsert_pairs(conn, s.trace_tags, trace_id, {SPANS_LOCATION: TRACKING_STORE})
                for span in group:
                    row = {
                        "parent_span_id": span.parent_span_id,
                        "name": span.name,
                        "start_time_unix_nano": span.start_ns,
                        "end_time_unix_nano": span.end_ns,
                        "status": span.status,
                        "content": span.content,
                    }
                    statement = _insert(conn, s.spans).values(trace_id=trace_id, span_id=span.span_id, **row)
                    await conn.execute(
                        statement.on_conflict_do_update(
                            index_elements=["trace_id", "span_id"], set_={k: statement.excluded[k] for k in row}
                        )
                    )

    async def _infos(self, conn: AsyncConnection, trace_ids: list[str]) -> list[dict[str, Any]]:
        """The infos of `trace_ids` that exist, in that order, in MLflow's TraceInfoV3 JSON."""
        if not trace_ids:
            return []
        rows = (await conn.execute(select(s.trace_info).where(s.trace_info.c.trace_id.in_(trace_ids)))).all()
        tags: dict[str, dict[str, str]] = {}
        for tag in await conn.execute(select(s.trace_tags).where(s.trace_tags.c.trace_id.in_(trace_ids))):
            tags.setdefault(tag.trace_id, {})[tag.key] = tag.value
        metadata: dict[str, dict[str, str]] = {}
        for item in await conn.execute(
            select(s.trace_request_metadata).where(s.trace_request_metadata.c.trace_id.in_(trace_ids))
        ):
            metadata.setdefault(item.trace_id, {})[item.key] = item.value
        assessments: dict[str, list[Any]] = {}
        for item in await conn.execute(
            select(s.assessments.c.trace_id, s.assessments.c.content)
            .where(s.assessments.c.trace_id.in_(trace_ids))
            .order_by(s.assessments.c.create_time, s.assessments.c.assessment_id)
        ):
            assessments.setdefault(item.trace_id, []).append(json.loads(item.content))
        found = {}
        for row in rows:
            info: dict[str, Any] = {
                "trace_id": row.trace_id,
                "trace_location": {
                    "type": "MLFLOW_EXPERIMENT",
                    "mlflow_experiment": {"experiment_id": str(row.experiment_id)},
                },
                "request_time": _timestamp(row.request_time),
                "state": row.state,
                "trace_metadata": metadata.get(row.trace_id, {}),
                "tags": tags.get(row.trace_id, {}),
            }
            if row.trace_id in assessments:
                info["assessments"] = assessments[row.trace_id]
            if row.execution_duration is not None:
                info["execution_duration"] = _duration(row.execution_duration)
            for name in ("client_request_id", "request_preview", "response_preview"):
                if getattr(row, name) is not None:
                    info[name] = getattr(row, name)
            found[row.trace_id] = info
        return [found[trace_id] for trace_id in dict.fromkeys(trace_ids) if trace_id in found]

    async def get_trace_info(self, trace_id: str) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            infos = await self._infos(conn, [trace_id])
        if not infos:
            raise NotFound(f"Trace with ID '{trace_id}' not found.")
        return infos[0]

    async def get_traces(self, trace_ids: list[str]) -> list[dict[str, Any]]:
        """The traces (info and spans) of `trace_ids` that exist, in that order."""
        async with self.engine.connect() as conn:
            infos = await self._infos(conn, trace_ids)
            spans: dict[str, list[Any]] = {}
            rows = await conn.execute(
                select(s.spans.c.trace_id, s.spans.c.content)
                .where(s.spans.c.trace_id.in_(trace_ids))
                .order_by(s.spans.c.start_time_unix_nano, s.spans.c.span_id)
            )
            for row in rows:
                spans.setdefault(row.trace_id, []).append(json.loads(row.content))
        return [{"trace_info": info, "spans": spans.get(info["trace_id"], [])} for info in infos]

    async def get_trace_infos(self, trace_ids: list[str], experiment_ids: list[object] | None) -> list[dict[str, Any]]:
        """The infos (no spans) of `trace_ids` that exist, only those of `experiment_ids` when given."""
        async with self.engine.connect() as conn:
            infos = await self._infos(conn, trace_ids)
        if experiment_ids is None:
            return infos
        allowed = {str(experiment_id) for experiment_id in experiment_ids}
        return [info for info in infos if info["trace_location"]["mlflow_experiment"]["experiment_id"] in allowed]

    async def _link(self, conn: AsyncConnection, source_ids: list[str], kind: str, destinations: list[str]) -> None:
        now = int(time.time() * 1000)
        for source_id in dict.fromkeys(source_ids):
            for destination in dict.fromkeys(destinations):
                await conn.execute(
                    _insert(conn, s.entity_associations)
                    .values(
                        source_type=TRACE,
                        source_id=source_id,
                        destination_type=kind,
                        destination_id=destination,
                        created_time=now,
                    )
                    .on_conflict_do_nothing()
                )

    async def _existing_all(self, conn: AsyncConnection, trace_ids: list[str]) -> None:
        t = s.trace_info.c
        found = {row.trace_id for row in await conn.execute(select(t.trace_id).where(t.trace_id.in_(trace_ids)))}
        if missing := [trace_id for trace_id in trace_ids if trace_id not in found]:
            raise NotFound(f"Trace with ID '{missing[0]}' not found.")

    async def link_traces_to_run(self, trace_ids: list[str], run_id: str) -> None:
        """Link existing traces to an existing run (a search on `run_id` then finds them); all or none."""
        if len(trace_ids) > MAX_LINKS_PER_REQUEST:
            raise InvalidValue(
                f"Cannot link more than {MAX_LINKS_PER_REQUEST} traces to a run in a single request. "
                f"Provided {len(trace_ids)} traces."
            )
        async with self.engine.begin() as conn:
            runs = s.runs.c
            if (await conn.execute(select(runs.run_uuid).where(runs.run_uuid == run_id))).first() is None:
                raise NotFound(f"Run with id={run_id} not found")
            await self._existing_all(conn, trace_ids)
            await self._link(conn, trace_ids, RUN, [run_id])

    async def link_prompts_to_trace(self, trace_id: str, prompt_versions: list[str]) -> None:
        """Link prompt versions ("name/version") to an existing trace."""
        async with self.engine.begin() as conn:
            await self._existing(conn, trace_id)
            await self._link(conn, [trace_id], PROMPT_VERSION, prompt_versions)

    async def linked(self, trace_id: str, kind: str) -> list[str]:
        """What the trace is linked to: run ids (RUN) or "name/version" (PROMPT_VERSION), oldest first."""
        links = s.entity_associations.c
        query = (
            select(links.destination_id)
            .where(links.source_type == TRACE, links.source_id == trace_id, links.destination_type == kind)
            .order_by(links.created_time, links.destination_id)
        )
        async with self.engine.connect() as conn:
            return [row.destination_id for row in await conn.execute(query)]

    async def count_traces(self, experiment_ids: list[object], clause_sets: list[list[Clause]]) -> list[int]:
        """How many of the experiments' traces match each list of clauses."""
        experiments = [_experiment_id(experiment_id) for experiment_id in experiment_ids]
        t = s.trace_info.c
        counts = []
        async with self.engine.connect() as conn:
            for clauses in clause_sets:
                query = select(func.count()).where(
                    t.experiment_id.in_(experiments), *(condition(clause) for clause in clauses)
                )
                counts.append(int((await conn.execute(query)).scalar_one()))
        return counts

    async def start_trace_v2(
        self, experiment_id: object, timestamp_ms: int, metadata: dict[str, str], tags: dict[str, str]
    ) -> dict[str, Any]:
        """MLflow 2's start: a new IN_PROGRESS trace with an id of the server's; its spans go to the
        artifact location the tag `mlflow.artifactLocation` names (MLflow 2 clients upload them there)."""
        experiment = _experiment_id(experiment_id)
        trace_id = "tr-" + uuid.uuid4().hex
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(s.experiments.c.artifact_location).where(s.experiments.c.experiment_id == experiment)
                )
            ).first()
            if row is None:
                raise NotFound(f"No Experiment with id={experiment} exists")
            location = f"{row.artifact_location.rstrip('/')}/traces/{trace_id}/artifacts"
            await conn.execute(
                s.trace_info.insert().values(
                    trace_id=trace_id,
                    experiment_id=experiment,
                    request_time=timestamp_ms,
                    execution_duration=None,
                    state="IN_PROGRESS",
                )
            )
            await _upsert_pairs(conn, s.trace_tags, trace_id, {**tags, ARTIFACT_LOCATION: location})
            await _upsert_pairs(conn, s.trace_request_metadata, trace_id, metadata)
            return (await self._infos(conn, [trace_id]))[0]

    async def end_trace_v2(
        self, trace_id: str, timestamp_ms: int, state: str, metadata: dict[str, str], tags: dict[str, str]
    ) -> dict[str, Any]:
        """MLflow 2's end: the duration from the start, the final state, metadata and tags merged."""
        t = s.trace_info.c
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(t.request_time).where(t.trace_id == trace_id))).first()
            if row is None:
                raise NotFound(f"Trace with ID '{trace_id}' not found.")
            await conn.execute(
                update(s.trace_info)
                .where(t.trace_id == trace_id)
                .values(execution_duration=timestamp_ms - row.request_time, state=state)
            )
            await _upsert_pairs(conn, s.trace_tags, trace_id, tags)
            await _upsert_pairs(conn, s.trace_request_metadata, trace_id, metadata)
            return (await self._infos(conn, [trace_id]))[0]

    async def get_trace(self, trace_id: str) -> dict[str, Any]:
        traces = await self.get_traces([trace_id])
        if not traces:
            raise NotFound(f"Trace with ID '{trace_id}' not found.")
        return traces[0]

    async def search_traces(
        self,
        experiment_ids: list[object],
        clauses: list[Clause],
        order_by: list[str],
        max_results: int,
        token: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        offset = page_offset(token)
        experiments = [_experiment_id(experiment_id) for experiment_id in experiment_ids]
        t = s.trace_info.c
        query = (
            select(t.trace_id)
            .where(t.experiment_id.in_(experiments), *(condition(clause) for clause in clauses))
            .order_by(*order_columns(order_by))
            .limit(max_results + 1)
            .offset(offset)
        )
        async with self.engine.connect() as conn:
            ids = [row.trace_id for row in await conn.execute(query)]
            infos = await self._infos(conn, ids[:max_results])
        return infos, offset_token(offset + max_results) if len(ids) > max_results else None

    async def delete_traces(
        self,
        experiment_id: object,
        *,
        max_timestamp_millis: int | None,
        max_traces: int | None,
        trace_ids: list[str],
    ) -> int:
        """Delete the experiment's traces named, or older than `max_timestamp_millis` (the oldest
        `max_traces` of them when given); the number deleted."""
        experiment = _experiment_id(experiment_id)
        t = s.trace_info.c
        if trace_ids and max_timestamp_millis is not None:
            raise InvalidValue("Only one of `max_timestamp_millis` and `trace_ids` can be specified.")
        if not trace_ids and max_timestamp_millis is None:
            raise InvalidValue("Either `max_timestamp_millis` or `trace_ids` must be specified.")
        if trace_ids:
            chosen = select(t.trace_id).where(t.experiment_id == experiment, t.trace_id.in_(trace_ids))
        else:
            chosen = (
                select(t.trace_id)
                .where(t.experiment_id == experiment, t.request_time <= max_timestamp_millis)
                .order_by(t.request_time, t.trace_id)
            )
            if max_traces is not None:
                chosen = chosen.limit(max_traces)
        async with self.engine.begin() as conn:
            ids = [row.trace_id for row in await conn.execute(chosen)]
            for table in (s.assessments, s.spans, s.trace_tags, s.trace_request_metadata, s.trace_info):
                await conn.execute(delete(table).where(table.c.trace_id.in_(ids)))
            links = s.entity_associations.c
            await conn.execute(
                delete(s.entity_associations).where(links.source_type == TRACE, links.source_id.in_(ids))
            )
        return len(ids)

    async def _existing(self, conn: AsyncConnection, trace_id: str) -> None:
        if (await conn.execute(select(s.trace_info.c.trace_id).where(s.trace_info.c.trace_id == trace_id))).first():
            return
        raise NotFound(f"Trace with ID '{trace_id}' not found.")

    async def set_trace_tag(self, trace_id: str, key: str, value: str) -> None:
        async with self.engine.begin() as conn:
            await self._existing(conn, trace_id)
            await _upsert_pairs(conn, s.trace_tags, trace_id, {key: value})

    async def delete_trace_tag(self, trace_id: str, key: str) -> None:
        async with self.engine.begin() as conn:
            await self._existing(conn, trace_id)
            tags = s.trace_tags.c
            result = await conn.execute(delete(s.trace_tags).where(tags.trace_id == trace_id, tags.key == key))
            if not result.rowcount:
                raise NotFound(f"No trace tag with key '{key}' for trace with ID '{trace_id}'")

    async def create_assessment(self, trace_id: str, assessment: dict[str, Any]) -> dict[str, Any]:
        """Store `assessment` (MLflow's Assessment JSON, checked by the caller) on the trace; the
        assessment it `overrides`, if any, becomes invalid."""
        now = int(time.time() * 1000)
        assessment = {
            **assessment,
            "assessment_id": "a-" + uuid.uuid4().hex,
            "trace_id": trace_id,
            "create_time": _timestamp(now),
            "last_update_time": _timestamp(now),
            "valid": True,
        }
        async with self.engine.begin() as conn:
            await self._existing(conn, trace_id)
            if overrides := assessment.get("overrides"):
                await self._set_valid(conn, trace_id, overrides, valid=False)
            await conn.execute(
                s.assessments.insert().values(
                    assessment_id=assessment["assessment_id"],
                    trace_id=trace_id,
                    name=assessment["assessment_name"],
                    create_time=now,
                    last_update_time=now,
                    content=json.dumps(assessment, separators=(",", ":")),
                )
            )
        return assessment

    async def _assessment(self, conn: AsyncConnection, trace_id: str, assessment_id: str) -> dict[str, Any]:
        a = s.assessments.c
        row = (
            await conn.execute(select(a.content).where(a.trace_id == trace_id, a.assessment_id == assessment_id))
        ).first()
        if row is None:
            raise NotFound(f"Assessment with ID '{assessment_id}' not found for trace '{trace_id}'")
        content: dict[str, Any] = json.loads(row.content)
        return content

    async def _write_assessment(self, conn: AsyncConnection, content: dict[str, Any], now: int) -> None:
        await conn.execute(
            update(s.assessments)
            .where(s.assessments.c.assessment_id == content["assessment_id"])
            .values(
                name=content["assessment_name"],
                last_update_time=now,
                content=json.dumps(content, separators=(",", ":")),
            )
        )

    async def _set_valid(self, conn: AsyncConnection, trace_id: str, assessment_id: str, *, valid: bool) -> None:
        content = await self._assessment(conn, trace_id, assessment_id)
        content["valid"] = valid
        await self._write_assessment(conn, content, int(time.time() * 1000))

    async def get_assessment(self, trace_id: str, assessment_id: str) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            return await self._assessment(conn, trace_id, assessment_id)

    async def update_assessment(self, trace_id: str, assessment_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply `changes` (the fields of the update mask, checked by the caller): metadata is merged,
        a new feedback or expectation replaces the value, whichever kind it was."""
        now = int(time.time() * 1000)
        async with self.engine.begin() as conn:
            await self._existing(conn, trace_id)
            content = await self._assessment(conn, trace_id, assessment_id)
            for name, value in changes.items():
                if name == "metadata":
                    content["metadata"] = {**content.get("metadata", {}), **value}
                elif name in ("feedback", "expectation"):
                    if ("feedback" if name == "expectation" else "expectation") in content:
                        raise InvalidValue(f"Cannot change the kind of assessment '{assessment_id}' to {name}")
                    content[name] = value
                else:
                    content[name] = value
            content["last_update_time"] = _timestamp(now)
            await self._write_assessment(conn, content, now)
        return content

    async def delete_assessment(self, trace_id: str, assessment_id: str) -> None:
        """Delete the assessment; the one it overrode becomes valid again."""
        async with self.engine.begin() as conn:
            await self._existing(conn, trace_id)
            content = await self._assessment(conn, trace_id, assessment_id)
            await conn.execute(delete(s.assessments).where(s.assessments.c.assessment_id == assessment_id))
            if overrides := content.get("overrides"):
                with contextlib.suppress(NotFound):  # the overridden one was deleted meanwhile
                    await self._set_valid(conn, trace_id, overrides, valid=True)


__all__ = ["SpanRow", "TraceInfo", "TraceStore"]
