"""Runs of several experiments in one table (`/runs?experiments=1&experiments=2`): choose the
experiments, filter, sort and page their runs together, tick runs of any of them to compare."""

from __future__ import annotations

from aiohttp import web

from gateway.http.app_keys import STORE_KEY
from gateway.http.request_values import query_pairs
from gateway.ui.rendering import page
from gateway.ui.runs_table import RunsQuery, chosen_experiments
from gateway.ui.tracking_pages import runs_view

EXPERIMENTS_OFFERED = 100
"""The chooser lists the newest active experiments (and any chosen ones)."""


@page
async def cross_experiment_page(request: web.Request) -> web.StreamResponse:
    store = request.app[STORE_KEY]
    pairs = query_pairs(request)
    experiments = await chosen_experiments(store, pairs)
    offered, _ = await store.search_experiments("ACTIVE_ONLY", EXPERIMENTS_OFFERED, None, None)
    chosen_ids = [experiment["experiment_id"] for experiment in experiments]
    choices = experiments + [e for e in offered if e["experiment_id"] not in chosen_ids]
    query = RunsQuery.parse(pairs, chosen_ids)
    return await runs_view(request, query, experiments, "/runs", cross={"choices": choices, "chosen": chosen_ids})
