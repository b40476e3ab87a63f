"""UI pages over the metadata store: experiments, an experiment's runs, one run, runs side by side.

Every view is a GET whose state lives in its URL (filter, sort, columns, page), so any view can be
bookmarked or shared. Changes are plain form posts, answered with a redirect (303) to the view.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from yarl import URL

from gateway.http.app_keys import STORE_KEY
from gateway.http.errors import ApiError
from gateway.http.request_values import query_pairs, query_params, whole_number
from gateway.store.errors import InvalidValue, NotFound
from gateway.tracking.limits import MAX_BULK_RUNS, MAX_HISTORY
from gateway.tracking.store import TrackingStore, offset_token
from gateway.ui.artifact_pages import run_artifact_summary
from gateway.ui.registry_pages import versions_from_run
from gateway.ui.rendering import page, render

RUNS_PER_PAGE = 100
MAX_RUNS_PER_PAGE = 1000
EXPERIMENTS_PER_PAGE = 100
MAX_PAGE = 1_000_000
DEFAULT_COLUMNS_PER_KIND = 6
COLUMN_KEYS_FROM_RUNS = 1000
"""The column chooser offers the keys of the experiment's newest runs (and of the runs shown)."""
COMPARE_MIN, COMPARE_MAX = 2, 10
DEFAULT_ORDER = "attributes.`start_time` DESC"  # as order_clause writes it, so its header link toggles
VIEWS = {"active": "ACTIVE_ONLY", "deleted": "DELETED_ONLY", "all": "ALL"}
COLUMN_KINDS = ("metrics", "params", "tags")


def _store(request: web.Request) -> TrackingStore:
    return request.app[STORE_KEY]


def _view(query: dict[str, str]) -> str:
    view = query.get("view", "active")
    if view not in VIEWS:
        raise ApiError.invalid(f"'view' must be one of {', '.join(VIEWS)}, got '{view[:40]}'")
    return view


def _by_key(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {item["key"]: item["value"] for item in items or []}


def run_row(run: dict[str, Any]) -> dict[str, Any]:
    """A run flattened for templates: info fields plus params, latest metrics and tags by key."""
    info, data = run["info"], run.get("data", {})
    return {
        **info,
        "params": _by_key(data.get("params")),
        "metrics": _by_key(data.get("metrics")),
        "tags": _by_key(data.get("tags")),
    }


# -- experiments ---------------------------------------------------------------------------------


@page
async def experiments_page(request: web.Request) -> web.StreamResponse:
    query = query_params(request)
    search = query.get("q", "").strip()
    view = _view(query)
    number = whole_number(query.get("page") or "1", "page", MAX_PAGE)
    found, next_token = await _store(request).search_experiments(
        VIEWS[view],
        EXPERIMENTS_PER_PAGE,
        None,
        offset_token((number - 1) * EXPERIMENTS_PER_PAGE),
        name_contains=search or None,
    )
    here = URL("/experiments").with_query({"q": search, "view": view})
    return render(
        request,
        "experiments.html",
        {
            "title": "Experiments",
            "experiments": found,
            "search": search,
            "view": view,
            "views": list(VIEWS),
            "page": number,
            "previous_url": str(here.update_query(page=number - 1)) if number > 1 else None,
            "next_url": str(here.update_query(page=number + 1)) if next_token else None,
        },
    )


FORM_TYPE = "application/x-www-form-urlencoded"


async def _form(request: web.Request) -> dict[str, str]:
    """The fields of a UI form post (cross-site posts never get here: `gateway.http.origin`); only what
    the UI's forms send is read."""
    declared = request.headers.get("Content-Type")
    if declared is None and not request.can_read_body:
        return {}
    if request.content_type != FORM_TYPE:
        raise ApiError(415, "BAD_REQUEST", f"Send the form as {FORM_TYPE} (got '{(declared or 'none')[:80]}')")
    try:
        form = await request.post()
    except ValueError:
        raise ApiError.invalid("The form is not valid UTF-8 URL-encoded text") from None
    return {key: value for key, value in form.items() if isinstance(value, str)}


@page
async def create_experiment(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    experiment_id = await _store(request).create_experiment(form.get("name", "").strip(), None, [])
    raise web.HTTPSeeOther(f"/experiments/{experiment_id}")


@page
async def rename_experiment(request: web.Request) -> web.StreamResponse:
    form = await _form(request)
    experiment_id = request.match_info["experiment_id"]
    await _store(request).update_experiment(experiment_id, form.get("new_name", "").strip())
    raise web.HTTPSeeOther(f"/experiments/{experiment_id}")


@page
async def delete_experiment(request: web.Request) -> web.StreamResponse:
    await _form(request)
    await _store(request).set_experiment_lifecycle(request.match_info["experiment_id"], "deleted")
    raise web.HTTPSeeOther("/experiments?view=deleted")


@page
async def restore_experiment(request: web.Request) -> web.StreamResponse:
    await _form(request)
    await _store(request).set_experiment_lifecycle(request.match_info["experiment_id"], "active")
    raise web.HTTPSeeOther(f"/experiments/{request.match_info['experiment_id']}")


# -- an experiment's runs ------------------------------------------------------------------------


def _columns(pairs: list[tuple[str, str]], keys: dict[str, list[str]]) -> list[tuple[str, str]]:
    """The chosen columns as (kind, key); by default the first few metrics and params."""
    chosen = [value for name, value in pairs if name == "columns" and value]
    if not chosen:
        return [(kind, key) for kind in ("metrics", "params") for key in keys[kind][:DEFAULT_COLUMNS_PER_KIND]]
    columns = []
    for value in chosen:
        kind, _, key = value.partition(".")
        if kind not in COLUMN_KINDS or not key:
            raise ApiError.invalid(f"Invalid column '{value[:80]}': use metrics.<key>, params.<key> or tags.<key>")
        columns.append((kind, key))
    return columns


def order_clause(kind: str, key: str, descending: bool) -> str:
    """An MLflow order_by clause for a column, the key quoted so any key works."""
    return f"{kind}.`{key}` {'DESC' if descending else 'ASC'}"


@page
async def runs_page(request: web.Request) -> web.StreamResponse:
    store = _store(request)
    experiment = await store.get_experiment(request.match_info["experiment_id"])
    experiment_id = experiment["experiment_id"]
    pairs = query_pairs(request)
    query = dict(pairs)  # single-valued parameters: the last one wins, as in query_params
    keys = await store.experiment_keys(int(experiment_id), COLUMN_KEYS_FROM_RUNS)
    columns = _columns(pairs, keys)
    search = query.get("filter", "").strip()
    order = query.get("order_by", "").strip() or DEFAULT_ORDER
    view = _view(query)
    size = whole_number(query.get("max_results") or str(RUNS_PER_PAGE), "max_results", MAX_RUNS_PER_PAGE)
    number = whole_number(query.get("page") or "1", "page", MAX_PAGE)
    offset = (number - 1) * size
    runs: list[dict[str, Any]] = []
    total = 0
    problem = None
    next_token = None
    try:
        found, next_token = await store.search_runs(
            [experiment_id], search or None, VIEWS[view], size, [order], offset_token(offset)
        )
        runs = [run_row(run) for run in found]
        if next_token is None and (runs or offset == 0):  # the last page: the total is known
            total = offset + len(runs)
        else:  # a page with more after it, or an empty one past the end
            total = await store.count_runs([experiment_id], search or None, VIEWS[view])
        for kind in COLUMN_KINDS:  # older runs on this page may use keys the newest runs do not
            keys[kind] = sorted({*keys[kind], *(key for run in runs for key in run[kind])})
    except InvalidValue as exc:
        problem = exc.message  # a bad filter or sort: show it beside the search box, keep the page
    here = URL(f"/experiments/{experiment_id}").with_query(
        [("filter", search), ("order_by", order), ("view", view), *[("columns", f"{k}.{c}") for k, c in columns]]
        + ([("max_results", str(size))] if size != RUNS_PER_PAGE else [])
    )
    sort_links = {}
    for kind, key in [("attributes", "start_time"), ("attributes", "run_name"), *columns]:
        descending = order != order_clause(kind, key, True)
        sort_links[f"{kind}.{key}"] = str(here.update_query(order_by=order_clause(kind, key, descending), page=1))
    first = offset + 1
    return render(
        request,
        "runs.html",
        {
            "title": experiment["name"],
            "experiment": experiment,
            "keys": keys,
            "columns": columns,
            "chosen": {f"{kind}.{key}" for kind, key in columns},
            "filter": search,
            "order_by": order,
            "view": view,
            "views": list(VIEWS),
            "runs": runs,
            "problem": problem,
            "total": total,
            "first": first,
            "last": first + len(runs) - 1,
            "page": number,
            "first_url": str(here.update_query(page=1)),
            "sort_links": sort_links,
            "previous_url": str(here.update_query(page=number - 1)) if number > 1 else None,
            "next_url": str(here.update_query(page=number + 1)) if next_token else None,
        },
        status=400 if problem else 200,
    )


# -- one run, and runs side by side --------------------------------------------------------------


def _chart_data(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """What ui.js charts: the runs (id, name) and the history routes' limits, so the script repeats no number."""
    return {
        "runs": [{"id": run["run_id"], "name": run.get("run_name") or run["run_id"]} for run in runs],
        "max_points": MAX_HISTORY,
        "bulk_runs": MAX_BULK_RUNS,
    }


def _dataset_row(item: dict[str, Any]) -> dict[str, str]:
    """A dataset input for the page; its tags are whatever the client logged, so only well-formed ones show."""
    dataset = item.get("dataset", {})
    tags = [tag for tag in item.get("tags", []) if isinstance(tag, dict)]
    return {
        "name": str(dataset.get("name", "")),
        "digest": str(dataset.get("digest", "")),
        "source_type": str(dataset.get("source_type", "")),
        "context": ", ".join(f"{tag.get('key', '')}={tag.get('value', '')}" for tag in tags),
    }


@page
async def run_page(request: web.Request) -> web.StreamResponse:
    store = _store(request)
    run = await store.get_run(request.match_info["run_id"])
    info = run["info"]
    if info["experiment_id"] != request.match_info["experiment_id"]:
        raise web.HTTPFound(f"/experiments/{info['experiment_id']}/runs/{info['run_id']}")
    experiment = await store.get_experiment(info["experiment_id"])
    row = run_row(run)
    models = []
    for output in run.get("outputs", {}).get("model_outputs", []):
        try:
            models.append(await store.get_logged_model(output["model_id"]))
        except NotFound:  # a failing store is the page's error, not a deleted model
            models.append({"model_id": output["model_id"], "name": "(deleted)"})
    tags = row["tags"]
    return render(
        request,
        "run.html",
        {
            "title": info.get("run_name") or info["run_id"],
            "experiment": experiment,
            "run": row,
            "user_tags": {k: v for k, v in tags.items() if not k.startswith("mlflow.")},
            "system_tags": {k: v for k, v in tags.items() if k.startswith("mlflow.")},
            "datasets": [_dataset_row(item) for item in run.get("inputs", {}).get("dataset_inputs", [])],
            "models": models,
            "registered_versions": await versions_from_run(request, info["run_id"]),
            "artifacts": await run_artifact_summary(request, info),
            "chart": _chart_data([info]),
        },
    )


@page
async def compare_page(request: web.Request) -> web.StreamResponse:
    pairs = query_pairs(request)
    ids = list(dict.fromkeys(value for name, value in pairs if name == "runs" and value))
    if not COMPARE_MIN <= len(ids) <= COMPARE_MAX:
        raise ApiError.invalid(
            f"Choose from {COMPARE_MIN} to {COMPARE_MAX} runs to compare (got {len(ids)}): tick them in an "
            "experiment's run table, or pass runs=<id>&runs=<id> in the URL"
        )
    store = _store(request)
    runs = [run_row(await store.get_run(run_id)) for run_id in ids]
    param_keys = sorted({key for run in runs for key in run["params"]})
    metric_keys = sorted({key for run in runs for key in run["metrics"]})
    params = [{"key": key, "values": [run["params"].get(key) for run in runs]} for key in param_keys]
    for param in params:
        param["differs"] = len(set(param["values"])) > 1
    only_differences = dict(pairs).get("only_differences") == "1"
    return render(
        request,
        "compare.html",
        {
            "title": f"Compare {len(runs)} runs",
            "runs": runs,
            "params": [p for p in params if p["differs"]] if only_differences else params,
            "only_differences": only_differences,
            "metric_keys": metric_keys,
            "chart": _chart_data(runs),
        },
    )
