"""The OpenAPI descriptions of the web UI's pages (see `gateway.http.openapi`); their errors are HTML
pages too."""

from __future__ import annotations

from typing import Any

from gateway.http.openapi_schemas import (
    ARTIFACT_PATH,
    CLIENT_ERROR,
    STRING,
    Operation,
    Operations,
    Schema,
    array,
    obj,
    query,
)

HTML = {"text/html": {"schema": STRING}}
HTML_OK = {"description": "The page", "content": HTML}
HTML_ERRORS: dict[str, Any] = {
    "4XX": {
        "description": "A page that says what is wrong (bad filter, unknown id, invalid path, ...)",
        "content": HTML,
    }
}
REDIRECT_BODY = {"text/plain": {"schema": STRING}}
SEE_OTHER = {"303": {"description": "Done; the Location header names the page to show", "content": REDIRECT_BODY}}
EXPERIMENT_ID = {"name": "experiment_id", "in": "path", "required": True, "schema": STRING}
RUN_ID = {"name": "run_id", "in": "path", "required": True, "schema": STRING}
PAGE = query("page", STRING, "1-based page number")
VIEW = query("view", {"type": "string", "enum": ["active", "deleted", "all"]})
UI_ARTIFACT_PAGES = {"501": {"description": "This server does not store these artifacts", "content": HTML}}


def page(summary: str, parameters: list[Schema], **more: Any) -> Operation:
    return {
        "summary": summary,
        "tags": ["ui"],
        "parameters": parameters,
        "responses": {"200": HTML_OK, **more, **HTML_ERRORS},
    }


def form(summary: str, parameters: list[Schema], fields: dict[str, Schema]) -> Operation:
    body = {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": obj(fields)}}}
    return {
        "summary": summary + " (a form post from the UI; refused when sent from another site)",
        "tags": ["ui"],
        "parameters": parameters,
        "requestBody": body,
        "responses": {**SEE_OTHER, **HTML_ERRORS},
    }


EXPERIMENTS = {
    **query("experiments", array(STRING), "experiment ids, up to 20 (each must exist)"),
    "explode": True,
}
TABLE_QUERY = [
    query("filter", STRING, "MLflow's search filter, e.g. metrics.loss < 0.2 and params.lr = '0.01'"),
    query("order_by", STRING, "one MLflow order_by clause, e.g. metrics.`loss` ASC"),
    {**query("columns", array(STRING), "metrics.<key>, params.<key> or tags.<key>"), "explode": True},
    VIEW,
    query(
        "nesting",
        {"type": "string", "enum": ["tree", "flat"]},
        "tree (default): top-level runs, children (tag mlflow.parentRunId) under their parent; flat: every run",
    ),
]
PAGE_QUERY = [
    query("max_results", STRING, "runs per page, 1 to 1000 (100)"),
    PAGE,
    {**query("expand", array(STRING), "parents whose children are listed (run ids, or all)"), "explode": True},
    query("compare_problem", STRING, "how many runs were ticked when Compare refused them (shown as a message)"),
]
MODEL_NAME = {"name": "name", "in": "path", "required": True, "schema": STRING}
RUNS_PAGE = page(
    "An experiment's runs as a table: MLflow filter, sort, chosen columns, nested runs, pages",
    [EXPERIMENT_ID, *TABLE_QUERY, *PAGE_QUERY],
)
CSV = {"text/csv": {"schema": STRING}}
AFTER = query("after", STRING, "continue a long folder after this entry")
RAW = query("raw", STRING, "a file's bytes instead of its page (the image preview; never a redirect)")
STEP = query("step", STRING, "the step a folder's log_image grid shows (a whole number; the last step by default)")
RUN_ARTIFACTS_PAGE = page(
    "A run's artifacts: the folder tree, a folder's entries (log_image series as a grid with a step slider), "
    "a file's size, digest and preview (log_table JSON as a table; HTML download-only)",
    [EXPERIMENT_ID, RUN_ID, AFTER, RAW, STEP],
    **UI_ARTIFACT_PAGES,
)
BROWSE_PAGE = page(
    "The artifact destination: the folder tree, a folder's entries, a file's size, digest and preview",
    [AFTER, RAW, STEP],
)
MODEL_ID = {"name": "model_id", "in": "path", "required": True, "schema": STRING}
MODEL_FILES_PAGE = page(
    "A logged model's files in the artifact browser (tree, entries, previews, folder archives)",
    [MODEL_ID, AFTER, RAW, STEP],
    **UI_ARTIFACT_PAGES,
)
LOGGED_MODEL_PAGES: dict[tuple[str, str], Operation] = {
    ("GET", "/experiments/{experiment_id}/logged-models"): page(
        "An experiment's logged models (MLflow 3), newest first: status in words, source run",
        [EXPERIMENT_ID, query("page_token", STRING, "the next page, from the page's Next link")],
    ),
    ("GET", "/logged-models/{model_id}"): page(
        "One logged model: status in words, params, metrics, tags, the run it came from, its files and a zip of them",
        [MODEL_ID],
    ),
    ("GET", "/logged-models/{model_id}/artifacts"): MODEL_FILES_PAGE,
    ("GET", "/logged-models/{model_id}/artifacts/{path}"): {
        **MODEL_FILES_PAGE,
        "parameters": [*MODEL_FILES_PAGE["parameters"], ARTIFACT_PATH],
    },
}
UI: dict[tuple[str, str], Operation] = {
    ("GET", "/"): page("The start page: experiments (the artifact browser with --artifacts-only)", []),
    ("GET", "/experiments"): page(
        "Experiments, searched by name", [query("q", STRING, "part of the name, any case"), VIEW, PAGE]
    ),
    ("POST", "/experiments"): form("Create an experiment", [], {"name": STRING}),
    ("GET", "/experiments/{experiment_id}"): RUNS_PAGE,
    ("POST", "/experiments/{experiment_id}/rename"): form(
        "Rename an experiment", [EXPERIMENT_ID], {"new_name": STRING}
    ),
    ("POST", "/experiments/{experiment_id}/delete"): form("Delete an experiment (restorable)", [EXPERIMENT_ID], {}),
    ("POST", "/experiments/{experiment_id}/restore"): form("Restore a deleted experiment", [EXPERIMENT_ID], {}),
    ("GET", "/experiments/{experiment_id}/runs/{run_id}"): page(
        "One run: params, latest metrics, metric charts over step and time, tags, inputs, logged models",
        [EXPERIMENT_ID, RUN_ID],
        **{"302": {"description": "The run is in another experiment: its own page", "content": REDIRECT_BODY}},
    ),
    ("GET", "/experiments/{experiment_id}/runs/{run_id}/artifacts"): RUN_ARTIFACTS_PAGE,
    ("GET", "/experiments/{experiment_id}/runs/{run_id}/artifacts/{path}"): {
        **RUN_ARTIFACTS_PAGE,
        "parameters": [*RUN_ARTIFACTS_PAGE["parameters"], ARTIFACT_PATH],
    },
    ("GET", "/compare-runs"): page(
        "2 to 10 runs side by side: parameter differences, latest metrics, overlaid metric curves",
        [
            {**query("runs", array(STRING), "run ids", required=True), "explode": True},
            query("only_differences", {"type": "string", "enum": ["0", "1"]}),
            query("back", STRING, "the runs table the Compare button was on: too few or too many runs return there"),
        ],
        **{"303": {"description": "Too few or too many runs: back to the table, saying so", "content": REDIRECT_BODY}},
    ),
    **LOGGED_MODEL_PAGES,
    ("GET", "/runs"): page(
        "The runs of several experiments in one table (choose the experiments; compare runs of any of them)",
        [EXPERIMENTS, *TABLE_QUERY, *PAGE_QUERY],
    ),
    ("GET", "/runs.csv"): {
        "summary": "A runs table as CSV: the same experiments, filter, order, nesting and columns, every matching "
        "run, streamed (run_id, run_name, experiment_id, parent_run_id, status, start_time, end_time, then the "
        "columns; times in milliseconds)",
        "tags": ["ui"],
        "parameters": [{**EXPERIMENTS, "required": True}, *TABLE_QUERY],
        "responses": {"200": {"description": "The runs, one CSV row each", "content": CSV}, **HTML_ERRORS},
    },
    ("GET", "/models"): page(
        "Registered models with their latest versions, aliases and tags, searched by name and tag",
        [query("q", STRING, "part of the name, any case"), query("tag", STRING, "key=value, or a key"), PAGE],
    ),
    ("GET", "/models/{name}"): page(
        "One registered model: description, aliases, tags, its versions with stage, source run and logged model",
        [MODEL_NAME],
    ),
    ("GET", "/models/{name}/versions/{version}"): page(
        "One model version: its facts, tags and files (each downloadable, all as one zip)",
        [MODEL_NAME, {"name": "version", "in": "path", "required": True, "schema": STRING}],
    ),
    ("GET", "/experiments/{experiment_id}/traces"): page(
        "An experiment's traces: request and response previews, status, duration, tags, assessments, run; pages",
        [EXPERIMENT_ID, query("filter", STRING, "MLflow's trace filter, e.g. trace.status = 'ERROR'"), PAGE],
    ),
    ("GET", "/experiments/{experiment_id}/traces/{trace_id}"): page(
        "One trace: its span tree on a timeline, each span's inputs, outputs, attributes and events, its "
        "assessments, the runs it belongs to",
        [EXPERIMENT_ID, {"name": "trace_id", "in": "path", "required": True, "schema": STRING}],
        **{"302": {"description": "The trace is in another experiment: its own page", "content": REDIRECT_BODY}},
    ),
    ("GET", "/browse"): BROWSE_PAGE,
    ("GET", "/browse/{path}"): {**BROWSE_PAGE, "parameters": [*BROWSE_PAGE["parameters"], ARTIFACT_PATH]},
    ("GET", "/ui-static/{name}"): {
        "summary": "The UI's own scripts and styles (uPlot, MIT licence, vendored)",
        "tags": ["ui"],
        "parameters": [{"name": "name", "in": "path", "required": True, "schema": STRING}],
        "responses": {"200": {"description": "The file", "content": {"*/*": {"schema": STRING}}}, "4XX": CLIENT_ERROR},
    },
}


# Keyed by (API family, METHOD, path below the family's prefix): the pages are no API family.
OPERATIONS: Operations = {("", method, path): operation for (method, path), operation in UI.items()}
