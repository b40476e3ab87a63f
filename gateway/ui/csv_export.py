"""The runs table as CSV (`/runs.csv`): the same experiments, filter, order, nesting and columns as
the page it is linked from, every matching run (not just the page shown), streamed a search page at
a time. Values are the API's: times in milliseconds, metrics as numbers, params and tags verbatim."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from gateway.http.app_keys import STORE_KEY
from gateway.http.errors import ApiError
from gateway.http.request_values import query_pairs
from gateway.store.pages import offset_token
from gateway.ui.rendering import page
from gateway.ui.runs_table import RunsQuery, chosen_experiments, default_columns, flat_row, merged_keys

RUNS_PER_READ = 1000
"""Runs read from the store per search while streaming (the store may end a page sooner by size)."""
INFO_FIELDS = ("run_id", "run_name", "experiment_id", "parent_run_id", "status", "start_time", "end_time")


def _lines(rows: Iterable[list[Any]]) -> bytes:
    text = io.StringIO()
    csv.writer(text).writerows(rows)  # RFC 4180 quoting: commas, quotes and newlines in values stay one field
    return text.getvalue().encode()


@page
async def runs_csv(request: web.Request) -> web.StreamResponse:
    store = request.app[STORE_KEY]
    pairs = query_pairs(request)
    experiments = await chosen_experiments(store, pairs)
    if not experiments:
        raise ApiError.invalid("Name the experiments to export: experiments=<id> (repeat it for several)")
    query = RunsQuery.parse(pairs, [experiment["experiment_id"] for experiment in experiments])
    columns = query.columns or default_columns(await merged_keys(store, experiments, RUNS_PER_READ))

    async def search(token: str | None) -> tuple[list[dict[str, Any]], str | None]:
        return await store.search_runs(
            query.experiment_ids, query.store_filter, query.view_type, RUNS_PER_READ, [query.order], token
        )

    found, token = await search(offset_token(0))  # a bad filter or order is a 400 page, before any byte is sent
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="runs.csv"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)
    await response.write(_lines([[*INFO_FIELDS, *(f"{kind}.{key}" for kind, key in columns)]]))
    while True:
        rows = [flat_row(run) for run in found]
        await response.write(
            _lines(
                [
                    *(_blank(row.get(field)) for field in INFO_FIELDS),
                    *(_blank(row[kind].get(key)) for kind, key in columns),
                ]
                for row in rows
            )
        )
        if token is None:
            break
        found, token = await search(token)
    await response.write_eof()
    return response


def _blank(value: object) -> str:
    """A value as the CSV cell: missing is empty, numbers as Python writes them (they read back equal)."""
    return "" if value is None else str(value)
