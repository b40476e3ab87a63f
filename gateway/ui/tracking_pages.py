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
from gateway.store.pages import offset_token
from gateway.tracking.limits import MAX_BULK_RUNS, MAX_HISTORY
from gateway.tracking.store import TrackingStore
from gateway.ui.artifact_pages import run_artifact_summary
from gateway.ui.compare_charts import compare_plot_data
from gateway.ui.logged_model_pages import status_words
from gateway.ui.registry_pages import versions_from_run
from gateway.ui.rendering import page, render
from gateway.ui.runs_table import (
    COLUMN_KINDS,
    MAX_CHILDREN_SHOWN,
    MAX_PAGE,
    PARENT_TAG,
    RUNS_PER_PAGE,
    VIEWS,
    RunsQuery,
    default_columns,
    flat_row,
    merged_keys,
    one_of,
    order_clause,
    tree_rows,
)

EXPERIMENTS_PER_PAGE = 100
COLUMN_KEYS_FROM_RUNS = 1000
"""The column chooser offers the keys of the experiment's newest runs (and of the runs shown)."""
COMPARE_MIN, COMPARE_MAX = 2, 10


def _store(request: web.Request) -> TrackingStore:
    return request.app[STORE_KEY]


def _view(query: dict[str, str]) -> str:
    return one_of(query, "view", list(VIEWS))


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


# -- an experiment's runs (and several experiments' runs: gateway.ui.cross_experiment) ------------


@page
async def runs_page(request: web.Request) -> web.StreamResponse:
    experiment = await _store(request).get_experiment(request.match_info["experiment_id"])
    query = RunsQuery.parse(query_pairs(request), [experiment["experiment_id"]])
    return await runs_view(request, query, [experiment], f"/experiments/{experiment['experiment_id']}")


async def runs_view(
    request: web.Request, query: RunsQuery, experiments: list[dict[str, Any]], path: str, **context: Any
) -> web.Response:
    """The runs table of `experiments` at `path` as `query` asks (a bad filter or sort is shown beside
    the search box, with a 400); `context` adds to the template's."""
    store = _store(request)
    keys = await merged_keys(store, experiments, COLUMN_KEYS_FROM_RUNS)
    runs: list[dict[str, Any]] = []
    total = 0
    problem = None
    next_token = None
    try:
        found, next_token = await store.search_runs(
            query.experiment_ids,
            query.store_filter,
            query.view_type,
            query.size,
            [query.order],
            offset_token(query.offset),
        )
        runs = [flat_row(run) for run in found]
        if next_token is None and (runs or query.offset == 0):  # the last page: the total is known
            total = query.offset + len(runs)
        else:  # a page with more after it, or an empty one past the end
            total = await store.count_runs(query.experiment_ids, query.store_filter, query.view_type)
    except InvalidValue as exc:
        problem = exc.message  # a bad filter or sort: show it beside the search box, keep the page
    shown_keys = {kind: sorted({key for run in runs for key in run[kind]}) for kind in COLUMN_KINDS}
    columns = query.columns or default_columns(shown_keys if runs else keys)
    for kind in COLUMN_KINDS:  # older runs on this page may use keys the newest runs do not
        keys[kind] = sorted({*keys[kind], *shown_keys[kind], *(key for k, key in columns if k == kind)})
    pairs = query.pairs(columns, experiments=path == "/runs")
    here = URL(path).with_query(pairs)
    this_page = here.update_query(page=query.page) if query.page > 1 else here  # unfolding a parent stays here
    rows = await tree_rows(store, query, runs, this_page) if problem is None else []
    sort_links, sorted_by = {}, {}
    for kind, key in [("attributes", "start_time"), ("attributes", "run_name"), *columns]:
        name = f"{kind}.{key}"
        descending = query.order != order_clause(kind, key, True)
        sort_links[name] = str(here.update_query(order_by=order_clause(kind, key, descending), page=1))
        if query.order in (order_clause(kind, key, True), order_clause(kind, key, False)):
            sorted_by = {"column": name, "descending": not descending}
    first = query.offset + 1
    here_with_expand = here.with_query([*pairs, *(("expand", value) for value in sorted(query.expand))])
    return render(
        request,
        "runs.html",
        {
            "title": experiments[0]["name"] if len(experiments) == 1 else "Runs of several experiments",
            "experiment": experiments[0] if len(experiments) == 1 else None,
            "experiment_names": {e["experiment_id"]: e["name"] for e in experiments},
            "path": path,
            "keys": keys,
            "columns": columns,
            "chosen": {f"{kind}.{key}" for kind, key in columns},
            "filter": query.filter,
            "order_by": query.order,
            "view": query.view,
            "views": list(VIEWS),
            "nesting": query.nesting,
            "max_results": query.size if query.size != RUNS_PER_PAGE else None,
            "expand": sorted(query.expand),
            "rows": rows,
            "problem": problem,
            "total": total,
            "first": first,
            "last": first + len(runs) - 1,
            "page": query.page,
            "first_url": str(here.update_query(page=1)),
            "csv_url": str(URL("/runs.csv").with_query(query.pairs(columns, experiments=True))),
            "sort_links": sort_links,
            "sorted_by": sorted_by,
            "previous_url": str(here_with_expand.update_query(page=query.page - 1)) if query.page > 1 else None,
            "next_url": str(here_with_expand.update_query(page=query.page + 1)) if next_token else None,
            "compare_limits": (COMPARE_MIN, COMPARE_MAX),
            "cross": None,
            "compare_problem": _ticked(query_params(request).get("compare_problem", "")),
            "back_url": str(here_with_expand.update_query(page=query.page)),
            **context,
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
    row = flat_row(run)
    models = []
    for output in run.get("outputs", {}).get("model_outputs", []):
        try:
            model = await store.get_logged_model(output["model_id"])
            models.append({**model, "status_words": status_words(model["info"]["status"])})
        except NotFound:  # a failing store is the page's error, not a deleted model
            models.append({"model_id": output["model_id"], "name": "(deleted)"})
    tags = row["tags"]
    return render(
        request,
        "run.html",
        {
            **await _family(store, row),
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


async def _family(store: TrackingStore, run: dict[str, Any]) -> dict[str, Any]:
    """A run's parent (tag mlflow.parentRunId) and its first children, each linked on the run page."""
    parent = None
    if run["parent_run_id"]:
        try:
            found = (await store.get_run(run["parent_run_id"]))["info"]
            parent = {"run_id": found["run_id"], "name": found["run_name"], "experiment_id": found["experiment_id"]}
        except (NotFound, InvalidValue):  # the tag is whatever the client logged
            parent = {"run_id": run["parent_run_id"], "name": None, "experiment_id": None}
    of_parent = f"tags.`{PARENT_TAG}` = '{run['run_id']}'"
    children, more = await store.child_runs([run["experiment_id"]], run["run_id"], "ACTIVE_ONLY", MAX_CHILDREN_SHOWN)
    all_children = URL(f"/experiments/{run['experiment_id']}").with_query(filter=of_parent, nesting="flat")
    return {
        "parent": parent,
        "children": [flat_row(child) for child in children],
        "children_url": str(all_children),
        "more_children": more,
    }


def _ticked(text: str) -> int | None:
    """How many runs were ticked when Compare was pressed with too few or too many (from the URL)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) < 6 else None


def _is_runs_view(path: str) -> bool:
    """`path` is one of this server's runs tables (so a redirect to it stays here)."""
    url = URL(path)
    return not url.is_absolute() and (url.path == "/runs" or url.path.startswith("/experiments/")) and "\\" not in path


@page
async def compare_page(request: web.Request) -> web.StreamResponse:
    pairs = query_pairs(request)
    ids = list(dict.fromkeys(value for name, value in pairs if name == "runs" and value))
    if not COMPARE_MIN <= len(ids) <= COMPARE_MAX:
        back = dict(pairs).get("back", "")
        if _is_runs_view(back):  # the table's compare button: say so on the table, ticks and all
            raise web.HTTPSeeOther(str(URL(back).update_query(compare_problem=str(len(ids)))))
        raise ApiError.invalid(
            f"Choose from {COMPARE_MIN} to {COMPARE_MAX} runs to compare (got {len(ids)}): tick them in an "
            "experiment's run table, or pass runs=<id>&runs=<id> in the URL"
        )
    store = _store(request)
    runs = [flat_row(await store.get_run(run_id)) for run_id in ids]
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
            "plots": compare_plot_data(runs, params, metric_keys),
        },
    )
