"""The side-by-side cases: for each tracking route, its valid requests and its typical bad ones.

Names are `<route>: <what>`. Setup steps create what a case needs on each server; their ids are
substituted into the request wherever `{experiment_id}`, `{run_id}`, `{model_id}`... appear, and
`{unique}` is a name no other case uses. The cases follow what MLflow's own live-server tests
(tests/tracking/test_rest_tracking.py) and its clients send and read, in our words.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tests.compat.harness import AJAX, ROOT, Answer, Case, Step

# -- setup steps ---------------------------------------------------------------------------------

EXPERIMENT = Step("POST", "/experiments/create", {"name": "{unique}"}, save={"experiment_id": "experiment_id"})
EXPERIMENT2 = Step("POST", "/experiments/create", {"name": "{unique}-b"}, save={"experiment2_id": "experiment_id"})
TAGGED_EXPERIMENT = Step(
    "POST",
    "/experiments/create",
    {"name": "{unique}", "tags": [{"key": "team", "value": "Red"}, {"key": "stage", "value": "dev"}]},
    save={"experiment_id": "experiment_id"},
)
DELETE_EXPERIMENT = Step("POST", "/experiments/delete", {"experiment_id": "{experiment_id}"})
RUN = Step(
    "POST",
    "/runs/create",
    {"experiment_id": "{experiment_id}", "run_name": "first", "start_time": 1000, "user_id": "alice"},
    save={"run_id": "run.info.run_id"},
)
RUN2 = Step(
    "POST",
    "/runs/create",
    {"experiment_id": "{experiment_id}", "run_name": "second", "start_time": 2000, "user_id": "bob"},
    save={"run2_id": "run.info.run_id"},
)
DELETE_RUN = Step("POST", "/runs/delete", {"run_id": "{run_id}"})
LOGGED = Step(
    "POST",
    "/runs/log-batch",
    {
        "run_id": "{run_id}",
        "metrics": [
            {"key": "loss", "value": 0.5, "timestamp": 1000, "step": 0},
            {"key": "loss", "value": 0.25, "timestamp": 1001, "step": 1},
            {"key": "loss", "value": 0.125, "timestamp": 1002, "step": 2},
            {"key": "acc", "value": 0.75, "timestamp": 1002, "step": 2},
        ],
        "params": [{"key": "opt", "value": "adam"}, {"key": "lr", "value": "0.1"}],
        "tags": [{"key": "team", "value": "vision"}],
    },
)
LOGGED2 = Step(
    "POST",
    "/runs/log-batch",
    {
        "run_id": "{run2_id}",
        "metrics": [{"key": "loss", "value": 0.75, "timestamp": 2000, "step": 0}],
        "params": [{"key": "opt", "value": "Adam"}, {"key": "lr", "value": "0.2"}],
        "tags": [{"key": "team", "value": "Vision"}],
    },
)
ARTIFACT = Step(
    "PUT",
    "/artifacts/{experiment_id}/{run_id}/artifacts/outputs/notes.txt",
    prefix="/api/2.0/mlflow-artifacts",
    raw=b"hello",
)
MODEL = Step(
    "POST",
    "/logged-models",
    {"experiment_id": "{experiment_id}", "name": "model", "source_run_id": "{run_id}", "model_type": "sk"},
    save={"model_id": "model.info.model_id"},
)
MODEL2 = Step(
    "POST",
    "/logged-models",
    {"experiment_id": "{experiment_id}", "name": "other", "tags": [{"key": "t", "value": "v"}]},
    save={"model2_id": "model.info.model_id"},
)
MODEL_ARTIFACT = Step(
    "PUT",
    "/artifacts/{experiment_id}/models/{model_id}/artifacts/MLmodel",
    prefix="/api/2.0/mlflow-artifacts",
    raw=b"flavors: {}",
)
MODEL_TAGS = Step("PATCH", "/logged-models/{model_id}/tags", {"tags": [{"key": "k", "value": "v"}]})
DELETE_MODEL = Step("DELETE", "/logged-models/{model_id}")

E = (EXPERIMENT,)
ER = (EXPERIMENT, RUN)
ERL = (EXPERIMENT, RUN, LOGGED)
ERM = (EXPERIMENT, RUN, MODEL)

GET_RUN = Step("GET", "/runs/get", query={"run_id": "{run_id}"})
GET_EXPERIMENT = Step("GET", "/experiments/get", query={"experiment_id": "{experiment_id}"})
GET_MODEL = Step("GET", "/logged-models/{model_id}")


def history(key: str) -> Step:
    return Step("GET", "/metrics/get-history", query={"run_id": "{run_id}", "metric_key": key})


def post(name: str, path: str, body: Any, setup: tuple[Step, ...] = (), **more: Any) -> Case:
    return Case(name, "POST", path, body=body, setup=setup, **more)


def get(name: str, path: str, query: dict[str, Any] | None = None, setup: tuple[Step, ...] = (), **more: Any) -> Case:
    return Case(name, "GET", path, query=query, setup=setup, **more)


LONG_KEY = "k" * 251
DATASET = {
    "dataset": {"name": "ds", "digest": "dg", "source_type": "local", "source": '{"uri": "/data"}'},
    "tags": [{"key": "mlflow.data.context", "value": "train"}],
}

# -- experiments ---------------------------------------------------------------------------------

EXPERIMENTS = [
    post(
        "experiments/create: name only",
        "/experiments/create",
        {"name": "{unique}"},
        after=(Step("GET", "/experiments/get-by-name", query={"experiment_name": "{unique}"}),),
    ),
    post(
        "experiments/create: with tags",
        "/experiments/create",
        {"name": "{unique}", "tags": [{"key": "owner", "value": "me"}, {"key": "multi line", "value": "a\nb"}]},
        after=(Step("GET", "/experiments/get-by-name", query={"experiment_name": "{unique}"}),),
    ),
    post("experiments/create: missing name", "/experiments/create", {}),
    post("experiments/create: name null", "/experiments/create", {"name": None}),
    post("experiments/create: empty name", "/experiments/create", {"name": ""}),
    post("experiments/create: name a number", "/experiments/create", {"name": 123}),
    post("experiments/create: name a list", "/experiments/create", {"name": ["a"]}),
    post(
        "experiments/create: artifact_location a number",
        "/experiments/create",
        {"name": "{unique}", "artifact_location": 9.0, "tags": [{"key": "key", "value": "value"}]},
    ),
    post(
        "experiments/create: tags a string",
        "/experiments/create",
        {"name": "{unique}", "tags": "5"},
    ),
    post("experiments/create: tags an object", "/experiments/create", {"name": "{unique}", "tags": {"a": "b"}}),
    post("experiments/create: tag without key", "/experiments/create", {"name": "{unique}", "tags": [{"value": "b"}]}),
    post(
        "experiments/create: tag key a#b",
        "/experiments/create",
        {"name": "{unique}", "tags": [{"key": "a#b", "value": "b"}]},
    ),
    post(
        "experiments/create: tag key too long",
        "/experiments/create",
        {"name": "{unique}", "tags": [{"key": LONG_KEY, "value": "b"}]},
    ),
    post(
        "experiments/create: tag value of 20,001",
        "/experiments/create",
        {"name": "{unique}", "tags": [{"key": "k", "value": "v" * 20_001}]},
    ),
    post("experiments/create: name of 501", "/experiments/create", {"name": "{unique}" + "n" * 501}),
    post("experiments/create: duplicate name", "/experiments/create", {"name": "{unique}"}, setup=E),
    post(
        "experiments/create: artifact_location runs:/",
        "/experiments/create",
        {"name": "{unique}", "artifact_location": "runs:/abc"},
    ),
    post("experiments/create: camelCase field", "/experiments/create", {"name": "{unique}", "artifactLocation": ""}),
    post(
        "experiments/create: artifact location on the server's disk",
        "/experiments/create",
        {"name": "{unique}", "artifact_location": "my_location"},
        theirs=Answer(200),
        ours=Answer(400, "INVALID_PARAMETER_VALUE", "is not allowed"),
    ),
    post("experiments/create: unknown field ignored", "/experiments/create", {"name": "{unique}", "bogus": 1}),
    Case(
        "experiments/create: text/plain body",
        "POST",
        "/experiments/create",
        raw=b'{"name": "x"}',
        headers={"Content-Type": "text/plain"},
    ),
    Case(
        "experiments/create: no Content-Type",
        "POST",
        "/experiments/create",
        raw=b'{"name": "x"}',
    ),
    Case(
        "experiments/create: charset in Content-Type",
        "POST",
        "/experiments/create",
        raw=b'{"name": "{unique}"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
        after=(Step("GET", "/experiments/get-by-name", query={"experiment_name": "{unique}"}),),
    ),
    Case(
        "experiments/create: body not JSON",
        "POST",
        "/experiments/create",
        raw=b"name=x",
        headers={"Content-Type": "application/json"},
        theirs=Answer(400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'name'"),
        ours=Answer(400, "BAD_REQUEST", "not valid JSON"),
    ),
    Case(
        "experiments/create: JSON array body",
        "POST",
        "/experiments/create",
        raw=b'[{"name": "x"}]',
        headers={"Content-Type": "application/json"},
        theirs=Answer(500, json=False),
        ours=Answer(400, "BAD_REQUEST", "must be a JSON object"),
    ),
    get("experiments/get: by id", "/experiments/get", {"experiment_id": "{experiment_id}"}, setup=(TAGGED_EXPERIMENT,)),
    get("experiments/get: default experiment", "/experiments/get", {"experiment_id": "0"}),
    get("experiments/get: missing id", "/experiments/get", {}),
    get("experiments/get: unknown id", "/experiments/get", {"experiment_id": "99999"}),
    get("experiments/get: id not a number", "/experiments/get", {"experiment_id": "abc"}),
    get(
        "experiments/get: deleted experiment",
        "/experiments/get",
        {"experiment_id": "{experiment_id}"},
        setup=(EXPERIMENT, DELETE_EXPERIMENT),
    ),
    get(
        "experiments/get-by-name: by name",
        "/experiments/get-by-name",
        {"experiment_name": "{unique}"},
        setup=(TAGGED_EXPERIMENT,),
    ),
    get("experiments/get-by-name: unknown name", "/experiments/get-by-name", {"experiment_name": "no such {unique}"}),
    get("experiments/get-by-name: missing name", "/experiments/get-by-name", {}),
    post(
        "experiments/update: rename",
        "/experiments/update",
        {"experiment_id": "{experiment_id}", "new_name": "{unique}-renamed"},
        setup=E,
        after=(GET_EXPERIMENT,),
    ),
    post("experiments/update: missing new_name", "/experiments/update", {"experiment_id": "{experiment_id}"}, setup=E),
    post("experiments/update: missing id", "/experiments/update", {"new_name": "x"}),
    post("experiments/update: unknown id", "/experiments/update", {"experiment_id": "99999", "new_name": "x"}),
    post(
        "experiments/update: name taken",
        "/experiments/update",
        {"experiment_id": "{experiment_id}", "new_name": "{unique}-b"},
        setup=(EXPERIMENT, EXPERIMENT2),
        theirs=Answer(400, "BAD_REQUEST", "UNIQUE constraint failed"),
        ours=Answer(400, "RESOURCE_ALREADY_EXISTS", "already exists"),
    ),
    post(
        "experiments/update: deleted experiment",
        "/experiments/update",
        {"experiment_id": "{experiment_id}", "new_name": "{unique}-new"},
        setup=(EXPERIMENT, DELETE_EXPERIMENT),
        theirs=Answer(500, "INVALID_STATE"),
        ours=Answer(400, "INVALID_PARAMETER_VALUE", "Cannot rename a non-active experiment."),
    ),
    post(
        "experiments/delete: delete",
        "/experiments/delete",
        {"experiment_id": "{experiment_id}"},
        setup=E,
        after=(GET_EXPERIMENT,),
    ),
    post("experiments/delete: missing id", "/experiments/delete", {}),
    post(
        "experiments/delete: both spellings of a field",
        "/experiments/delete",
        {"experiment_id": "{experiment_id}", "experimentId": "{experiment_id}"},
        setup=E,
        theirs=Answer(400, "INVALID_PARAMETER_VALUE"),
        ours=Answer(200),
    ),
    post("experiments/delete: unknown id", "/experiments/delete", {"experiment_id": "99999"}),
    post(
        "experiments/delete: already deleted",
        "/experiments/delete",
        {"experiment_id": "{experiment_id}"},
        setup=(EXPERIMENT, DELETE_EXPERIMENT),
        theirs=Answer(404, "RESOURCE_DOES_NOT_EXIST"),
        ours=Answer(200),
    ),
    post(
        "experiments/restore: restore",
        "/experiments/restore",
        {"experiment_id": "{experiment_id}"},
        setup=(EXPERIMENT, DELETE_EXPERIMENT),
        after=(GET_EXPERIMENT,),
    ),
    post(
        "experiments/restore: active experiment",
        "/experiments/restore",
        {"experiment_id": "{experiment_id}"},
        setup=E,
        theirs=Answer(404, "RESOURCE_DOES_NOT_EXIST"),
        ours=Answer(200),
    ),
    post("experiments/restore: missing id", "/experiments/restore", {}),
    post("experiments/restore: unknown id", "/experiments/restore", {"experiment_id": "99999"}),
    post(
        "experiments/set-experiment-tag: set and overwrite",
        "/experiments/set-experiment-tag",
        {"experiment_id": "{experiment_id}", "key": "team", "value": "Blue"},
        setup=(TAGGED_EXPERIMENT,),
        after=(GET_EXPERIMENT,),
    ),
    post(
        "experiments/set-experiment-tag: empty value",
        "/experiments/set-experiment-tag",
        {"experiment_id": "{experiment_id}", "key": "empty", "value": ""},
        setup=E,
        after=(GET_EXPERIMENT,),
    ),
    post(
        "experiments/set-experiment-tag: missing value",
        "/experiments/set-experiment-tag",
        {"experiment_id": "{experiment_id}", "key": "novalue"},
        setup=E,
        after=(GET_EXPERIMENT,),
    ),
    post(
        "experiments/set-experiment-tag: missing key",
        "/experiments/set-experiment-tag",
        {"experiment_id": "{experiment_id}", "value": "v"},
        setup=E,
    ),
    post("experiments/set-experiment-tag: missing id", "/experiments/set-experiment-tag", {"key": "k", "value": "v"}),
    post(
        "experiments/set-experiment-tag: key a#b",
        "/experiments/set-experiment-tag",
        {"experiment_id": "{experiment_id}", "key": "a#b", "value": "v"},
        setup=E,
    ),
    post(
        "experiments/set-experiment-tag: key ../x",
        "/experiments/set-experiment-tag",
        {"experiment_id": "{experiment_id}", "key": "../x", "value": "v"},
        setup=E,
    ),
    post(
        "experiments/set-experiment-tag: key too long",
        "/experiments/set-experiment-tag",
        {"experiment_id": "{experiment_id}", "key": LONG_KEY, "value": "v"},
        setup=E,
    ),
    post(
        "experiments/set-experiment-tag: value of 20,000",
        "/experiments/set-experiment-tag",
        {"experiment_id": "{experiment_id}", "key": "long", "value": "v" * 20_000},
        setup=E,
    ),
    post(
        "experiments/set-experiment-tag: value of 20,001",
        "/experiments/set-experiment-tag",
        {"experiment_id": "{experiment_id}", "key": "long", "value": "v" * 20_001},
        setup=E,
    ),
    post(
        "experiments/set-experiment-tag: value a number",
        "/experiments/set-experiment-tag",
        {"experiment_id": "{experiment_id}", "key": "k", "value": 5},
        setup=E,
    ),
    post(
        "experiments/set-experiment-tag: unknown experiment",
        "/experiments/set-experiment-tag",
        {"experiment_id": "99999", "key": "k", "value": "v"},
    ),
    post(
        "experiments/set-experiment-tag: deleted experiment",
        "/experiments/set-experiment-tag",
        {"experiment_id": "{experiment_id}", "key": "k", "value": "v"},
        setup=(EXPERIMENT, DELETE_EXPERIMENT),
    ),
    post(
        "experiments/delete-experiment-tag: delete",
        "/experiments/delete-experiment-tag",
        {"experiment_id": "{experiment_id}", "key": "team"},
        setup=(TAGGED_EXPERIMENT,),
        after=(GET_EXPERIMENT,),
    ),
    post(
        "experiments/delete-experiment-tag: missing tag",
        "/experiments/delete-experiment-tag",
        {"experiment_id": "{experiment_id}", "key": "nope"},
        setup=E,
    ),
]

# -- experiment search ---------------------------------------------------------------------------

SEARCHABLE = (
    Step("POST", "/experiments/create", {"name": "{unique}-Alpha", "tags": [{"key": "team", "value": "Red"}]}),
    Step("POST", "/experiments/create", {"name": "{unique}-alpha2", "tags": [{"key": "team", "value": "red"}]}),
    Step("POST", "/experiments/create", {"name": "{unique}-beta"}, save={"experiment_id": "experiment_id"}),
    DELETE_EXPERIMENT,
)
OURS = "name LIKE '{unique}-%'"


def search_experiments(name: str, body: dict[str, Any], **more: Any) -> Case:
    return post(f"experiments/search: {name}", "/experiments/search", body, setup=SEARCHABLE, **more)


EXPERIMENT_SEARCH = [
    search_experiments("by name prefix", {"filter": OURS, "max_results": 10}),
    search_experiments("all view types", {"filter": OURS, "max_results": 10, "view_type": "ALL"}),
    search_experiments("deleted only", {"filter": OURS, "max_results": 10, "view_type": "DELETED_ONLY"}),
    search_experiments("view type as a number", {"filter": OURS, "max_results": 10, "view_type": 3}),
    search_experiments(
        "unknown view type",
        {"filter": OURS, "max_results": 10, "view_type": "BOGUS"},
        theirs=Answer(200),
        ours=Answer(400, "INVALID_PARAMETER_VALUE", "Invalid view type 'BOGUS'"),
    ),
    search_experiments("order by name", {"filter": OURS, "max_results": 10, "order_by": ["name ASC"]}),
    search_experiments("order by name desc", {"filter": OURS, "max_results": 10, "order_by": ["attribute.name DESC"]}),
    search_experiments("order by an unknown key", {"filter": OURS, "max_results": 10, "order_by": ["bogus"]}),
    search_experiments("order by a tag", {"filter": OURS, "max_results": 10, "order_by": ["tags.team"]}),
    search_experiments("order by a bad direction", {"filter": OURS, "max_results": 10, "order_by": ["name ASCENDING"]}),
    search_experiments("order_by a string", {"filter": OURS, "max_results": 10, "order_by": "name"}),
    search_experiments("first page", {"filter": OURS, "max_results": 1, "order_by": ["name"]}),
    search_experiments(
        "second page",
        {"filter": OURS, "max_results": 1, "order_by": ["name"], "page_token": "eyJvZmZzZXQiOiAxfQ=="},
    ),
    search_experiments("name LIKE is case-sensitive", {"filter": "name LIKE '{unique}-a%'", "max_results": 10}),
    search_experiments("name ILIKE", {"filter": "name ILIKE '{unique}-a%'", "max_results": 10}),
    search_experiments("name equals", {"filter": "attribute.name = '{unique}-Alpha'", "max_results": 10}),
    search_experiments("name not equal", {"filter": f"{OURS} AND name != '{{unique}}-Alpha'", "max_results": 10}),
    search_experiments("tag equals", {"filter": f"{OURS} AND tags.team = 'Red'", "max_results": 10}),
    search_experiments("tag. prefix", {"filter": f"{OURS} AND tag.team = 'Red'", "max_results": 10}),
    search_experiments("tag LIKE is case-sensitive", {"filter": f"{OURS} AND tags.team LIKE 'r%'", "max_results": 10}),
    search_experiments("tag ILIKE", {"filter": f"{OURS} AND tags.team ILIKE 'r%'", "max_results": 10}),
    search_experiments(
        "tag IS NULL", {"filter": f"{OURS} AND tags.team IS NULL", "max_results": 10, "view_type": "ALL"}
    ),
    search_experiments("creation_time", {"filter": f"{OURS} AND creation_time > 0", "max_results": 10}),
    search_experiments(
        "creation_time against a string",
        {"filter": f"{OURS} AND creation_time > '0'", "max_results": 10},
    ),
    search_experiments("OR", {"filter": f"{OURS} OR name = 'x'", "max_results": 10}),
    search_experiments("params filter", {"filter": "params.a = 'b'", "max_results": 10}),
    search_experiments("unknown attribute", {"filter": "foo = 'b'", "max_results": 10}),
    search_experiments("bad comparator on name", {"filter": "name > 'a'", "max_results": 10}),
    search_experiments(
        "without max_results", {"filter": OURS}, theirs=Answer(400, "INVALID_PARAMETER_VALUE"), ours=Answer(200)
    ),
    search_experiments("max_results 0", {"filter": OURS, "max_results": 0}),
    search_experiments("max_results 50,001", {"filter": OURS, "max_results": 50_001}),
    search_experiments("max_results a string", {"filter": OURS, "max_results": "5"}),
    search_experiments("page_token garbage", {"filter": OURS, "max_results": 10, "page_token": "garbage"}),
    get(
        "experiments/search: GET",
        "/experiments/search",
        {"filter": OURS, "max_results": "10", "view_type": "ALL"},
        setup=SEARCHABLE,
    ),
    get(
        "experiments/search: GET max_results not a number",
        "/experiments/search",
        {"filter": OURS, "max_results": "abc"},
    ),
]

# -- runs ----------------------------------------------------------------------------------------

RUNS = [
    post("runs/create: experiment only", "/runs/create", {"experiment_id": "{experiment_id}"}, setup=E),
    post(
        "runs/create: every field",
        "/runs/create",
        {
            "experiment_id": "{experiment_id}",
            "run_name": "my name",
            "start_time": 456,
            "user_id": "username",
            "tags": [
                {"key": "mlflow.user", "value": "username"},
                {"key": "mlflow.source.type", "value": "LOCAL"},
                {"key": "mlflow.parentRunId", "value": "7"},
                {"key": "my", "value": "tag"},
            ],
        },
        setup=E,
    ),
    post(
        "runs/create: run name from the tag",
        "/runs/create",
        {"experiment_id": "{experiment_id}", "start_time": 1, "tags": [{"key": "mlflow.runName", "value": "tagged"}]},
        setup=E,
    ),
    post(
        "runs/create: run name and tag differ",
        "/runs/create",
        {"experiment_id": "{experiment_id}", "run_name": "a", "tags": [{"key": "mlflow.runName", "value": "b"}]},
        setup=E,
    ),
    post(
        "runs/create: no experiment_id",
        "/runs/create",
        {"run_name": "x", "start_time": 1},
        theirs=Answer(400, "BAD_REQUEST", "FOREIGN KEY constraint failed"),
        ours=Answer(400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'experiment_id'"),
    ),
    post("runs/create: unknown experiment", "/runs/create", {"experiment_id": "99999"}),
    post("runs/create: experiment id not a number", "/runs/create", {"experiment_id": "abc"}),
    post(
        "runs/create: deleted experiment",
        "/runs/create",
        {"experiment_id": "{experiment_id}"},
        setup=(EXPERIMENT, DELETE_EXPERIMENT),
    ),
    post(
        "runs/create: start_time a string",
        "/runs/create",
        {"experiment_id": "{experiment_id}", "start_time": "abc"},
        setup=E,
    ),
    post(
        "runs/create: tags an object",
        "/runs/create",
        {"experiment_id": "{experiment_id}", "start_time": 1, "run_name": "r", "tags": {"a": "b"}},
        setup=E,
        theirs=Answer(200),
        ours=Answer(400, "INVALID_PARAMETER_VALUE"),
    ),
    post(
        "runs/create: tag key a#b",
        "/runs/create",
        {"experiment_id": "{experiment_id}", "start_time": 1, "run_name": "r", "tags": [{"key": "a#b", "value": "v"}]},
        setup=E,
        theirs=Answer(200),
        ours=Answer(400, "INVALID_PARAMETER_VALUE", "Names may only contain"),
    ),
    post(
        "runs/create: tag value of 9,000",
        "/runs/create",
        {
            "experiment_id": "{experiment_id}",
            "start_time": 1,
            "run_name": "r",
            "tags": [{"key": "long", "value": "v" * 9000}],
        },
        setup=E,
        theirs=Answer(200),
        ours=Answer(200),
    ),
    get("runs/get: by run_id", "/runs/get", {"run_id": "{run_id}"}, setup=(*ERL, ARTIFACT)),
    get("runs/get: by run_uuid", "/runs/get", {"run_uuid": "{run_id}"}, setup=ER),
    get("runs/get: missing id", "/runs/get", {}),
    get("runs/get: empty id", "/runs/get", {"run_id": ""}),
    get("runs/get: unknown id", "/runs/get", {"run_id": "nonexistent"}),
    get("runs/get: deleted run", "/runs/get", {"run_id": "{run_id}"}, setup=(*ER, DELETE_RUN)),
    post(
        "runs/update: finish",
        "/runs/update",
        {"run_id": "{run_id}", "status": "FINISHED", "end_time": 5000},
        setup=ER,
        after=(GET_RUN,),
    ),
    post(
        "runs/update: rename only",
        "/runs/update",
        {"run_id": "{run_id}", "run_name": "renamed"},
        setup=ER,
        after=(GET_RUN,),
    ),
    post(
        "runs/update: by run_uuid",
        "/runs/update",
        {"run_uuid": "{run_id}", "status": "FAILED", "end_time": 6000},
        setup=ER,
    ),
    post(
        "runs/update: unknown status",
        "/runs/update",
        {"run_id": "{run_id}", "status": "BOGUS"},
        setup=ER,
        theirs=Answer(200),
        ours=Answer(400, "INVALID_PARAMETER_VALUE", "BOGUS"),
    ),
    post("runs/update: missing run id", "/runs/update", {"status": "FINISHED"}),
    post("runs/update: unknown run", "/runs/update", {"run_id": "nonexistent", "status": "FINISHED"}),
    post("runs/update: end_time a string", "/runs/update", {"run_id": "{run_id}", "end_time": "x"}, setup=ER),
    post(
        "runs/update: deleted run",
        "/runs/update",
        {"run_id": "{run_id}", "status": "FINISHED"},
        setup=(*ER, DELETE_RUN),
    ),
    post("runs/delete: delete", "/runs/delete", {"run_id": "{run_id}"}, setup=ER, after=(GET_RUN,)),
    post("runs/delete: missing run id", "/runs/delete", {}),
    post("runs/delete: unknown run", "/runs/delete", {"run_id": "nonexistent"}),
    post("runs/delete: already deleted", "/runs/delete", {"run_id": "{run_id}"}, setup=(*ER, DELETE_RUN)),
    post("runs/restore: restore", "/runs/restore", {"run_id": "{run_id}"}, setup=(*ER, DELETE_RUN), after=(GET_RUN,)),
    post("runs/restore: active run", "/runs/restore", {"run_id": "{run_id}"}, setup=ER),
    post("runs/restore: missing run id", "/runs/restore", {}),
    post("runs/restore: unknown run", "/runs/restore", {"run_id": "nonexistent"}),
]

# -- metrics, params and tags of a run ------------------------------------------------------------


def log_metric(name: str, body: dict[str, Any], **more: Any) -> Case:
    return post(f"runs/log-metric: {name}", "/runs/log-metric", body, setup=more.pop("setup", ER), **more)


def metric(**fields: Any) -> dict[str, Any]:
    return {"run_id": "{run_id}", "key": "m", "value": 1.0, "timestamp": 789, "step": 2, **fields}


LOG_METRIC = [
    log_metric("metric", metric(), after=(history("m"),)),
    log_metric("as the client sends it", metric(run_uuid="{run_id}"), after=(history("m"),)),
    log_metric(
        "without step", {"run_id": "{run_id}", "key": "m", "value": 987.654, "timestamp": 321}, after=(history("m"),)
    ),
    log_metric("NaN", metric(value="NaN"), after=(GET_RUN,)),
    log_metric("infinities", metric(value="Infinity"), after=(GET_RUN, history("m"))),
    log_metric("value a numeric string", metric(value="1.5"), after=(history("m"),)),
    log_metric("value not a number", metric(value="abc")),
    log_metric("missing value", {"run_id": "{run_id}", "key": "m", "timestamp": 1}),
    log_metric("missing timestamp", {"run_id": "{run_id}", "key": "m", "value": 1.0}),
    log_metric("timestamp not a number", metric(timestamp="foo")),
    log_metric("negative timestamp", metric(timestamp=-1)),
    log_metric("step not a number", metric(step="foo")),
    log_metric("run_id a number", metric(run_id=31)),
    log_metric("run_id null", metric(run_id=None)),
    log_metric("missing key", {"run_id": "{run_id}", "value": 31, "timestamp": 59, "step": 41}),
    log_metric("key null", metric(key=None)),
    log_metric("key a number", metric(key=31)),
    log_metric("key a#b", metric(key="a#b")),
    log_metric("key with space, colon, slash", metric(key="a b:c/d"), after=(GET_RUN,)),
    log_metric("key ../x", metric(key="../x")),
    log_metric("key /abs", metric(key="/abs")),
    log_metric("key a//b", metric(key="a//b")),
    log_metric("key too long", metric(key=LONG_KEY)),
    log_metric("bad key and unknown run", metric(run_id="nonexistent", key="a#b")),
    log_metric("unknown run", metric(run_id="nonexistent")),
    log_metric("deleted run", metric(), setup=(*ER, DELETE_RUN)),
    log_metric(
        "with a model id",
        metric(model_id="{model_id}", dataset_name="ds", dataset_digest="dg"),
        setup=ERM,
        after=(GET_MODEL, history("m")),
    ),
    log_metric(
        "same point twice", metric(), setup=(*ER, Step("POST", "/runs/log-metric", metric())), after=(history("m"),)
    ),
    log_metric(
        "finished run",
        metric(),
        setup=(*ER, Step("POST", "/runs/update", {"run_id": "{run_id}", "status": "FINISHED"})),
    ),
]


def log_param(name: str, body: dict[str, Any], **more: Any) -> Case:
    return post(f"runs/log-parameter: {name}", "/runs/log-parameter", body, setup=more.pop("setup", ER), **more)


LOG_PARAM = [
    log_param("param", {"run_id": "{run_id}", "key": "p", "value": "v"}, after=(GET_RUN,)),
    log_param("empty value", {"run_id": "{run_id}", "key": "p", "value": ""}, after=(GET_RUN,)),
    log_param("missing value", {"run_id": "{run_id}", "key": "p"}, after=(GET_RUN,)),
    log_param("value a number", {"run_id": "{run_id}", "key": "p", "value": 41}),
    log_param("run_id a number", {"run_id": 31, "key": "p", "value": "v"}),
    log_param("key a number", {"run_id": "{run_id}", "key": 31, "value": "v"}),
    log_param("missing key", {"run_id": "{run_id}", "value": "v"}),
    log_param("key a#b", {"run_id": "{run_id}", "key": "a#b", "value": "v"}),
    log_param("key ../x", {"run_id": "{run_id}", "key": "../x", "value": "v"}),
    log_param("key too long", {"run_id": "{run_id}", "key": LONG_KEY, "value": "v"}),
    log_param("value of 6,000", {"run_id": "{run_id}", "key": "p", "value": "v" * 6000}, after=(GET_RUN,)),
    log_param("value of 6,001", {"run_id": "{run_id}", "key": "p", "value": "v" * 6001}, after=(GET_RUN,)),
    log_param(
        "same value again",
        {"run_id": "{run_id}", "key": "opt", "value": "adam"},
        setup=ERL,
    ),
    log_param(
        "changed value",
        {"run_id": "{run_id}", "key": "opt", "value": "sgd"},
        setup=ERL,
    ),
    log_param("unknown run", {"run_id": "nonexistent", "key": "p", "value": "v"}),
    log_param("deleted run", {"run_id": "{run_id}", "key": "p", "value": "v"}, setup=(*ER, DELETE_RUN)),
]


def set_tag(name: str, body: dict[str, Any], **more: Any) -> Case:
    return post(f"runs/set-tag: {name}", "/runs/set-tag", body, setup=more.pop("setup", ER), **more)


SET_TAG = [
    set_tag("tag", {"run_id": "{run_id}", "key": "taggity", "value": "do-dah"}, after=(GET_RUN,)),
    set_tag("by run_uuid", {"run_uuid": "{run_id}", "key": "key", "value": "value"}, after=(GET_RUN,)),
    set_tag("overwrite", {"run_id": "{run_id}", "key": "team", "value": "nlp"}, setup=ERL, after=(GET_RUN,)),
    set_tag("empty value", {"run_id": "{run_id}", "key": "t", "value": ""}, after=(GET_RUN,)),
    set_tag(
        "rename through the tag", {"run_id": "{run_id}", "key": "mlflow.runName", "value": "via-tag"}, after=(GET_RUN,)
    ),
    set_tag("value a number", {"run_id": "{run_id}", "key": "param", "value": 41}),
    set_tag("run_id a number", {"run_id": 31, "key": "tag", "value": "v"}),
    set_tag("missing key", {"run_id": "{run_id}", "value": "value"}),
    set_tag("key a#b", {"run_id": "{run_id}", "key": "a#b", "value": "v"}),
    set_tag("key too long", {"run_id": "{run_id}", "key": LONG_KEY, "value": "v"}),
    set_tag("value of 8,000", {"run_id": "{run_id}", "key": "t", "value": "v" * 8000}, after=(GET_RUN,)),
    set_tag("value of 8,001", {"run_id": "{run_id}", "key": "t", "value": "v" * 8001}, after=(GET_RUN,)),
    set_tag("unknown run", {"run_id": "nonexistent", "key": "t", "value": "v"}),
    set_tag("deleted run", {"run_id": "{run_id}", "key": "t", "value": "v"}, setup=(*ER, DELETE_RUN)),
]

DELETE_TAG = [
    post(
        "runs/delete-tag: delete",
        "/runs/delete-tag",
        {"run_id": "{run_id}", "key": "team"},
        setup=ERL,
        after=(GET_RUN,),
    ),
    post("runs/delete-tag: missing tag", "/runs/delete-tag", {"run_id": "{run_id}", "key": "fakeTag"}, setup=ER),
    post("runs/delete-tag: missing key", "/runs/delete-tag", {"run_id": "{run_id}"}, setup=ER),
    post("runs/delete-tag: unknown run", "/runs/delete-tag", {"run_id": "fake_run_id", "key": "t"}),
    post(
        "runs/delete-tag: deleted run",
        "/runs/delete-tag",
        {"run_id": "{run_id}", "key": "team"},
        setup=(*ERL, DELETE_RUN),
    ),
]


def log_batch(name: str, body: dict[str, Any], **more: Any) -> Case:
    return post(
        f"runs/log-batch: {name}",
        "/runs/log-batch",
        {"run_id": "{run_id}", **body},
        setup=more.pop("setup", ER),
        **more,
    )


LOG_BATCH = [
    log_batch(
        "metrics, params and tags",
        {
            "metrics": [{"key": "metric", "value": 123.456, "timestamp": 789, "step": 3}],
            "params": [{"key": "param", "value": "value"}],
            "tags": [{"key": "taggity", "value": "do-dah"}],
        },
        after=(GET_RUN, history("metric")),
    ),
    log_batch("nothing", {}),
    Case(
        "runs/log-batch: text/plain body",
        "POST",
        "/runs/log-batch",
        raw=b'{"run_id": "{run_id}", "params": [{"key": "p", "value": "v"}]}',
        headers={"Content-Type": "text/plain"},
        setup=ER,
        after=(GET_RUN,),
    ),
    log_batch(
        "empty values", {"params": [{"key": "p", "value": ""}], "tags": [{"key": "t", "value": ""}]}, after=(GET_RUN,)
    ),
    log_batch("param value null", {"params": [{"key": "p", "value": None}]}, after=(GET_RUN,)),
    log_batch("metrics a string", {"metrics": "foo"}),
    log_batch("params a string", {"params": "foo"}),
    log_batch("tags a string", {"tags": "foo"}),
    log_batch("metric without timestamp", {"metrics": [{"key": "mae", "value": 2.5}]}),
    log_batch(
        "metric without step",
        {"metrics": [{"key": "mae", "value": 2.5, "timestamp": 123456789}]},
        after=(history("mae"),),
    ),
    log_batch(
        "metric values of every shape",
        {
            "metrics": [
                {"key": "shape", "value": value, "timestamp": 2**53 + step, "step": step}
                for step, value in enumerate(["Infinity", "-Infinity", 1e300, 5e-324, -0.0, 0.1, 123456789, -2.5])
            ]
            + [{"key": "shape", "value": 7.0, "timestamp": 0, "step": -(2**62)}]
        },
        after=(history("shape"),),
    ),
    log_batch(
        "metric key of every character allowed",
        {"metrics": [{"key": "épreuve/a b:c-d.e_f", "value": 1.0, "timestamp": 1, "step": 0}]},
        after=(history("épreuve/a b:c-d.e_f"),),
    ),
    log_batch("metric value null", {"metrics": [{"key": "mae", "value": None, "timestamp": 1}]}),
    log_batch("metric key a#b", {"metrics": [{"key": "a#b", "value": 1, "timestamp": 1}]}),
    log_batch("param key a#b", {"params": [{"key": "a#b", "value": "v"}]}),
    log_batch("tag key too long", {"tags": [{"key": LONG_KEY, "value": "v"}]}),
    log_batch(
        "duplicate param keys",
        {"params": [{"key": "dup", "value": "1"}, {"key": "dup", "value": "2"}]},
    ),
    log_batch("changed param", {"params": [{"key": "opt", "value": "sgd"}]}, setup=ERL),
    log_batch("same param again", {"params": [{"key": "opt", "value": "adam"}]}, setup=ERL),
    log_batch("101 params", {"params": [{"key": f"p{i}", "value": "v"} for i in range(101)]}),
    log_batch(
        "1,001 metrics",
        {"metrics": [{"key": "m", "value": i, "timestamp": i} for i in range(1001)]},
    ),
    log_batch("101 tags", {"tags": [{"key": f"t{i}", "value": "v"} for i in range(101)]}),
    log_batch("param value of 7,000", {"params": [{"key": "p", "value": "v" * 7000}]}, after=(GET_RUN,)),
    log_batch("tag value of 9,000", {"tags": [{"key": "t", "value": "v" * 9000}]}, after=(GET_RUN,)),
    post(
        "runs/log-batch: run_uuid only",
        "/runs/log-batch",
        {"run_uuid": "{run_id}", "params": [{"key": "p", "value": "v"}]},
        setup=ER,
        theirs=Answer(400, "INVALID_PARAMETER_VALUE"),
        ours=Answer(200),
    ),
    post(
        "runs/log-batch: unknown run",
        "/runs/log-batch",
        {"run_id": "nonexistent", "params": [{"key": "p", "value": "v"}]},
    ),
    log_batch("deleted run", {"params": [{"key": "p", "value": "v"}]}, setup=(*ER, DELETE_RUN)),
]

# -- inputs and outputs --------------------------------------------------------------------------

LOG_INPUTS = [
    post(
        "runs/log-inputs: dataset",
        "/runs/log-inputs",
        {"run_id": "{run_id}", "datasets": [DATASET]},
        setup=ER,
        after=(GET_RUN,),
    ),
    post(
        "runs/log-inputs: same dataset twice",
        "/runs/log-inputs",
        {"run_id": "{run_id}", "datasets": [DATASET]},
        setup=(*ER, Step("POST", "/runs/log-inputs", {"run_id": "{run_id}", "datasets": [DATASET]})),
        after=(GET_RUN,),
    ),
    post(
        "runs/log-inputs: model",
        "/runs/log-inputs",
        {"run_id": "{run_id}", "models": [{"model_id": "{model_id}"}]},
        setup=ERM,
        after=(GET_RUN,),
    ),
    post("runs/log-inputs: missing run id", "/runs/log-inputs", {"datasets": [DATASET]}),
    post("runs/log-inputs: missing datasets", "/runs/log-inputs", {"run_id": "{run_id}"}, setup=ER),
    post("runs/log-inputs: datasets a string", "/runs/log-inputs", {"run_id": "{run_id}", "datasets": "x"}, setup=ER),
    post(
        "runs/log-inputs: dataset without name",
        "/runs/log-inputs",
        {"run_id": "{run_id}", "datasets": [{"dataset": {"digest": "d", "source_type": "local", "source": "s"}}]},
        setup=ER,
        theirs=Answer(200),
        ours=Answer(400, "INVALID_PARAMETER_VALUE", "name"),
    ),
    post("runs/log-inputs: unknown run", "/runs/log-inputs", {"run_id": "nonexistent", "datasets": [DATASET]}),
]

LOG_OUTPUTS = [
    post(
        "runs/outputs: model",
        "/runs/outputs",
        {"run_id": "{run_id}", "models": [{"model_id": "{model_id}", "step": 0}]},
        setup=ERM,
        after=(GET_RUN,),
    ),
    post(
        "runs/outputs: same model twice",
        "/runs/outputs",
        {"run_id": "{run_id}", "models": [{"model_id": "{model_id}", "step": 0}]},
        setup=(
            *ERM,
            Step("POST", "/runs/outputs", {"run_id": "{run_id}", "models": [{"model_id": "{model_id}", "step": 0}]}),
        ),
        theirs=Answer(400, "BAD_REQUEST", "UNIQUE constraint failed"),
        ours=Answer(200),
    ),
    post("runs/outputs: no models", "/runs/outputs", {"run_id": "{run_id}"}, setup=ER),
    post("runs/outputs: missing run id", "/runs/outputs", {"models": [{"model_id": "m-x", "step": 0}]}),
    post(
        "runs/outputs: unknown run",
        "/runs/outputs",
        {"run_id": "nonexistent", "models": [{"model_id": "m-x", "step": 0}]},
    ),
]

# -- run search ----------------------------------------------------------------------------------

SEARCH_SETUP = (EXPERIMENT, RUN, LOGGED, RUN2, LOGGED2)


def search_runs(name: str, body: dict[str, Any], **more: Any) -> Case:
    return post(
        f"runs/search: {name}",
        "/runs/search",
        {"experiment_ids": ["{experiment_id}"], **body},
        setup=SEARCH_SETUP,
        **more,
    )


RUN_SEARCH = [
    search_runs("all runs", {}),
    search_runs("metric and param filter", {"filter": "metrics.loss < 0.5 and params.opt = 'adam'"}),
    search_runs("param LIKE is case-sensitive", {"filter": "params.opt LIKE 'a%'"}),
    search_runs("param ILIKE", {"filter": "params.opt ILIKE 'a%'"}),
    search_runs("tag filter", {"filter": "tags.team = 'vision'"}),
    search_runs("run name", {"filter": "attributes.run_name = 'second'"}),
    search_runs("status", {"filter": "attributes.status = 'RUNNING'"}),
    search_runs("order by metric", {"order_by": ["metrics.loss DESC"]}),
    search_runs("order by start time", {"order_by": ["attributes.start_time ASC"]}),
    search_runs("order by param", {"order_by": ["params.lr DESC"]}),
    search_runs("first page", {"max_results": 1, "order_by": ["attributes.start_time"]}),
    search_runs("deleted only", {"run_view_type": "DELETED_ONLY"}),
    search_runs("bad filter", {"filter": "metrics.loss <"}),
    search_runs("unknown entity", {"filter": "foo.bar = 'x'"}),
    search_runs("unquoted param value", {"filter": "params.opt = adam"}),
    search_runs("bad order_by", {"order_by": ["metrics.loss SIDEWAYS"]}),
    search_runs("max_results too large", {"max_results": 123456789}),
    search_runs("page_token garbage", {"page_token": "garbage"}),
    post(
        "runs/search: values of every shape",
        "/runs/search",
        {"experiment_ids": ["{experiment_id}"]},
        setup=(
            *ERM,
            Step(
                "POST",
                "/runs/log-batch",
                {
                    "run_id": "{run_id}",
                    "metrics": [
                        {"key": f"m{n}", "value": value, "timestamp": 2**53, "step": -(2**62)}
                        for n, value in enumerate(["NaN", "Infinity", "-Infinity", -0.0, 5e-324, 1e300, 123456789])
                    ],
                    "params": [{"key": "épreuve", "value": 'quote " back \\ line\n tab\t \u0001 \u2028 😀 ü'}],
                    "tags": [{"key": "t/a b:c-d.e_f", "value": "<b>&amp;</b> ' é"}],
                },
            ),
            Step("POST", "/runs/log-inputs", {"run_id": "{run_id}", "datasets": [DATASET]}),
            Step("POST", "/runs/outputs", {"run_id": "{run_id}", "models": [{"model_id": "{model_id}", "step": 3}]}),
            Step("POST", "/runs/update", {"run_id": "{run_id}", "status": "FINISHED", "end_time": 5000}),
        ),
    ),
    post("runs/search: no experiment ids", "/runs/search", {}),
    post("runs/search: unknown experiment", "/runs/search", {"experiment_ids": ["99999"]}),
]

# -- metric history ------------------------------------------------------------------------------

HISTORY = [
    get(
        "metrics/get-history: history", "/metrics/get-history", {"run_id": "{run_id}", "metric_key": "loss"}, setup=ERL
    ),
    get(
        "metrics/get-history: as the client asks",
        "/metrics/get-history",
        {"run_uuid": "{run_id}", "run_id": "{run_id}", "metric_key": "loss", "max_results": "25000"},
        setup=ERL,
    ),
    get(
        "metrics/get-history: unknown key",
        "/metrics/get-history",
        {"run_id": "{run_id}", "metric_key": "nope"},
        setup=ERL,
    ),
    get("metrics/get-history: missing key", "/metrics/get-history", {"run_id": "{run_id}"}, setup=ERL),
    get(
        "metrics/get-history: unknown run",
        "/metrics/get-history",
        {"run_id": "nonexistent", "metric_key": "loss"},
        theirs=Answer(200),
        ours=Answer(404, "RESOURCE_DOES_NOT_EXIST"),
    ),
    get("metrics/get-history: missing run", "/metrics/get-history", {"metric_key": "loss"}),
    get(
        "metrics/get-history: first page",
        "/metrics/get-history",
        {"run_id": "{run_id}", "metric_key": "loss", "max_results": "2"},
        setup=ERL,
    ),
    get(
        "metrics/get-history: max_results 0",
        "/metrics/get-history",
        {"run_id": "{run_id}", "metric_key": "loss", "max_results": "0"},
        setup=ERL,
    ),
]


def bulk(name: str, query: dict[str, Any], **more: Any) -> Case:
    return get(f"metrics/get-history-bulk: {name}", "/metrics/get-history-bulk", query, prefix=AJAX, **more)


HISTORY_BULK = [
    bulk(
        "two runs",
        {"run_id": ["{run_id}", "{run2_id}"], "metric_key": "loss"},
        setup=SEARCH_SETUP,
        unordered=("metrics",),  # runs in id order: random ids, a random order on each server
    ),
    bulk("max_results", {"run_id": ["{run_id}"], "metric_key": "loss", "max_results": "2"}, setup=ERL),
    bulk("unknown run", {"run_id": ["nonexistent"], "metric_key": "loss"}),
    bulk("no run id", {"metric_key": "loss"}),
    bulk("101 run ids", {"run_id": [f"id_{i}" for i in range(101)], "metric_key": "loss"}),
    bulk("no metric key", {"run_id": ["123"]}),
    bulk(
        "max_results not a number",
        {"run_id": ["123"], "metric_key": "loss", "max_results": "x"},
        theirs=Answer(500, json=False),
        ours=Answer(400, "INVALID_PARAMETER_VALUE", "max_results"),
    ),
]

# -- artifacts of a run --------------------------------------------------------------------------

ARTIFACT_LISTS = [
    get("artifacts/list: root", "/artifacts/list", {"run_id": "{run_id}"}, setup=(*ER, ARTIFACT)),
    get("artifacts/list: folder", "/artifacts/list", {"run_id": "{run_id}", "path": "outputs"}, setup=(*ER, ARTIFACT)),
    get("artifacts/list: by run_uuid", "/artifacts/list", {"run_uuid": "{run_id}"}, setup=(*ER, ARTIFACT)),
    get("artifacts/list: empty run", "/artifacts/list", {"run_id": "{run_id}"}, setup=ER),
    get("artifacts/list: missing folder", "/artifacts/list", {"run_id": "{run_id}", "path": "nope"}, setup=ER),
    get(
        "artifacts/list: a file",
        "/artifacts/list",
        {"run_id": "{run_id}", "path": "outputs/notes.txt"},
        setup=(*ER, ARTIFACT),
    ),
    get(
        "artifacts/list: ../ in path",
        "/artifacts/list",
        {"run_id": "{run_id}", "path": "../path"},
        setup=ER,
        theirs=Answer(400, "INVALID_PARAMETER_VALUE", fields={"message": "Invalid path"}),
        ours=Answer(400, "INVALID_PARAMETER_VALUE", "Invalid path: "),
    ),
    get("artifacts/list: unknown run", "/artifacts/list", {"run_id": "nonexistent"}),
    get("artifacts/list: missing run id", "/artifacts/list", {}),
]

# -- logged models -------------------------------------------------------------------------------

LOGGED_MODELS = [
    post(
        "logged-models: create",
        "/logged-models",
        {
            "experiment_id": "{experiment_id}",
            "name": "m",
            "source_run_id": "{run_id}",
            "model_type": "sklearn",
            "tags": [{"key": "mlflow.source.type", "value": "LOCAL"}],
            "params": [{"key": "alpha", "value": "0.5"}],
        },
        setup=ER,
    ),
    post("logged-models: create without name", "/logged-models", {"experiment_id": "{experiment_id}"}, setup=E),
    post("logged-models: create missing experiment", "/logged-models", {}),
    post("logged-models: create unknown experiment", "/logged-models", {"experiment_id": "99999"}),
    post(
        "logged-models: create name a/b", "/logged-models", {"experiment_id": "{experiment_id}", "name": "a/b"}, setup=E
    ),
    post(
        "logged-models: create tags an object",
        "/logged-models",
        {"experiment_id": "{experiment_id}", "tags": {"a": "b"}},
        setup=E,
    ),
    get("logged-models/<id>: get", "/logged-models/{model_id}", setup=(*ERM, MODEL_TAGS)),
    get("logged-models/<id>: unknown", "/logged-models/m-nope"),
    get("logged-models/<id>: deleted", "/logged-models/{model_id}", setup=(*ERM, DELETE_MODEL)),
    get(
        "logged-models/<id>: deleted, allow_deleted",
        "/logged-models/{model_id}",
        {"allow_deleted": "true"},
        setup=(*ERM, DELETE_MODEL),
    ),
    Case(
        "logged-models/<id>: finalize",
        "PATCH",
        "/logged-models/{model_id}",
        body={"model_id": "{model_id}", "status": "LOGGED_MODEL_READY"},
        setup=ERM,
    ),
    Case(
        "logged-models/<id>: finalize as failed",
        "PATCH",
        "/logged-models/{model_id}",
        body={"model_id": "{model_id}", "status": "LOGGED_MODEL_UPLOAD_FAILED"},
        setup=ERM,
    ),
    Case(
        "logged-models/<id>: finalize missing status",
        "PATCH",
        "/logged-models/{model_id}",
        body={"model_id": "{model_id}"},
        setup=ERM,
    ),
    Case(
        "logged-models/<id>: finalize unknown status",
        "PATCH",
        "/logged-models/{model_id}",
        body={"model_id": "{model_id}", "status": "BOGUS"},
        setup=ERM,
        theirs=Answer(200, fields={}),
        ours=Answer(400, "INVALID_PARAMETER_VALUE", "status"),
    ),
    Case(
        "logged-models/<id>: finalize unknown model",
        "PATCH",
        "/logged-models/m-nope",
        body={"model_id": "m-nope", "status": "LOGGED_MODEL_READY"},
    ),
    Case("logged-models/<id>: delete", "DELETE", "/logged-models/{model_id}", setup=ERM, after=(GET_MODEL,)),
    Case("logged-models/<id>: delete unknown", "DELETE", "/logged-models/m-nope"),
    Case("logged-models/<id>: delete twice", "DELETE", "/logged-models/{model_id}", setup=(*ERM, DELETE_MODEL)),
    Case(
        "logged-models/<id>/tags: set",
        "PATCH",
        "/logged-models/{model_id}/tags",
        body={"tags": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}, {"key": "k", "value": "new"}]},
        setup=(*ERM, MODEL_TAGS),
        after=(GET_MODEL,),
    ),
    Case("logged-models/<id>/tags: no tags", "PATCH", "/logged-models/{model_id}/tags", body={}, setup=ERM),
    Case(
        "logged-models/<id>/tags: unknown model",
        "PATCH",
        "/logged-models/m-nope/tags",
        body={"tags": [{"key": "a", "value": "1"}]},
    ),
    Case(
        "logged-models/<id>/tags: key a#b",
        "PATCH",
        "/logged-models/{model_id}/tags",
        body={"tags": [{"key": "a#b", "value": "1"}]},
        setup=ERM,
        theirs=Answer(200),
        ours=Answer(400, "INVALID_PARAMETER_VALUE", "Names may only contain"),
    ),
    Case(
        "logged-models/<id>/tags/<key>: delete",
        "DELETE",
        "/logged-models/{model_id}/tags/k",
        setup=(*ERM, MODEL_TAGS),
        after=(GET_MODEL,),
    ),
    Case("logged-models/<id>/tags/<key>: missing tag", "DELETE", "/logged-models/{model_id}/tags/nope", setup=ERM),
    Case("logged-models/<id>/tags/<key>: unknown model", "DELETE", "/logged-models/m-nope/tags/k"),
    post(
        "logged-models/<id>/params: log",
        "/logged-models/{model_id}/params",
        {"model_id": "{model_id}", "params": [{"key": "r", "value": "2"}]},
        setup=ERM,
        after=(GET_MODEL,),
    ),
    get("logged-models/<id>/artifacts/directories: list", "/logged-models/{model_id}/artifacts/directories", setup=ERM),
]


def search_models(name: str, body: dict[str, Any], **more: Any) -> Case:
    setup = (EXPERIMENT, RUN, MODEL, MODEL2, MODEL_TAGS)
    return post(
        f"logged-models/search: {name}",
        "/logged-models/search",
        {"experiment_ids": ["{experiment_id}"], **body},
        setup=setup,
        **more,
    )


MODEL_SEARCH = [
    search_models("all", {}),
    search_models("by name", {"filter": "name = 'model'"}),
    search_models("name LIKE is case-sensitive", {"filter": "name LIKE 'M%'"}),
    search_models("by tag", {"filter": "tags.t = 'v'"}),
    Case(
        "logged-models/search: by metric",
        "POST",
        "/logged-models/search",
        body={"experiment_ids": ["{experiment_id}"], "filter": "metrics.acc > 0.5"},
        setup=(*ERM, MODEL2, Step("POST", "/runs/log-metric", metric(key="acc", value=0.75, model_id="{model_id}"))),
    ),
    search_models("tag. prefix", {"filter": "tag.t = 'v'"}),
    search_models("OR", {"filter": "name = 'model' OR name = 'other'"}),
    search_models("order by name", {"order_by": [{"field_name": "name", "ascending": True}]}),
    search_models("order by an unknown field", {"order_by": [{"field_name": "bogus"}]}),
    search_models("first page", {"max_results": 1}),
    search_models(
        "page_token garbage",
        {"page_token": "garbage"},
        theirs=Answer(500, json=False),
        ours=Answer(400, "INVALID_PARAMETER_VALUE", "page_token"),
    ),
    post("logged-models/search: missing experiment ids", "/logged-models/search", {}),
    post("logged-models/search: experiment ids a string", "/logged-models/search", {"experiment_ids": "2"}),
    post("logged-models/search: unknown experiment", "/logged-models/search", {"experiment_ids": ["99999"]}),
]

# -- anything else -------------------------------------------------------------------------------

OTHER = [
    post("ajax prefix: create an experiment", "/experiments/create", {"name": "{unique}"}, prefix=AJAX),
    get("ajax prefix: get a run", "/runs/get", {"run_id": "{run_id}"}, setup=ER, prefix=AJAX),
    post("unknown route", "/bogus", {}, theirs=Answer(404, json=False), ours=Answer(404, "ENDPOINT_NOT_FOUND")),
    get(
        "wrong method", "/runs/create", theirs=Answer(405, json=False), ours=Answer(405, "BAD_REQUEST", "allowed: POST")
    ),
    post(
        "experiments/search-datasets: an experiment",
        "/experiments/search-datasets",
        {"experiment_ids": ["{experiment_id}"]},
        setup=E,
        prefix=AJAX,
    ),
    get(
        "metrics/get-history-bulk-interval: a run",
        "/metrics/get-history-bulk-interval",
        {"run_ids": ["{run_id}"], "metric_key": "loss"},
        setup=ERL,
    ),
    get(
        "server-info: capabilities",
        "/api/3.0/mlflow/server-info",
        prefix=ROOT,
        theirs=Answer(200, fields={"store_type": "SqlStore", "multipart_uploads_enabled": False}),
        ours=Answer(200, fields={"store_type": "SqlStore", "multipart_uploads_enabled": False}),
    ),
    get("version", "/version", prefix=ROOT),
    get(
        "get-artifact: a file",
        "/get-artifact",
        {"run_id": "{run_id}", "path": "outputs/notes.txt"},
        setup=(*ER, ARTIFACT),
        prefix=ROOT,
        compare_headers=("Content-Type", "Content-Disposition", "X-Content-Type-Options"),
    ),
    get(
        "get-artifact: by run_uuid",
        "/get-artifact",
        {"run_uuid": "{run_id}", "path": "outputs/notes.txt"},
        setup=(*ER, ARTIFACT),
        prefix=ROOT,
    ),
    get(
        "get-artifact: missing file",
        "/get-artifact",
        {"run_id": "{run_id}", "path": "missing.txt"},
        setup=ER,
        prefix=ROOT,
    ),
    get(
        "get-artifact: a folder",
        "/get-artifact",
        {"run_id": "{run_id}", "path": "outputs"},
        setup=(*ER, ARTIFACT),
        prefix=ROOT,
    ),
    get("get-artifact: ../ in path", "/get-artifact", {"run_id": "{run_id}", "path": "../x"}, setup=ER, prefix=ROOT),
    get("get-artifact: unknown run", "/get-artifact", {"run_id": "nonexistent", "path": "a.txt"}, prefix=ROOT),
    get(
        "get-artifact: missing path",
        "/get-artifact",
        {"run_id": "{run_id}"},
        setup=ER,
        prefix=ROOT,
        theirs=Answer(400, json=False),
        ours=Answer(400, "INVALID_PARAMETER_VALUE", "path"),
    ),
    get(
        "get-artifact: missing run id",
        "/get-artifact",
        {"path": "a.txt"},
        prefix=ROOT,
        theirs=Answer(404, "RESOURCE_DOES_NOT_EXIST", "Run with id=None not found"),
        ours=Answer(400, "INVALID_PARAMETER_VALUE", "run_id"),
    ),
    get(
        "logged-models/<id>/artifacts/files: a file",
        "/logged-models/{model_id}/artifacts/files",
        {"artifact_file_path": "MLmodel"},
        setup=(*ERM, MODEL_ARTIFACT),
        prefix=AJAX,
        compare_headers=("Content-Type", "Content-Disposition", "X-Content-Type-Options"),
    ),
    Case(
        "upload-artifact: a small file",
        "POST",
        "/upload-artifact",
        query={"run_uuid": "{run_id}", "path": "up/loaded.txt"},
        raw=b"uploaded",
        setup=ER,
        prefix=AJAX,
        theirs=Answer(200, json=False),
        ours=Answer(200, fields={}),
        after=(Step("GET", "/get-artifact", query={"run_id": "{run_id}", "path": "up/loaded.txt"}, prefix=ROOT),),
    ),
]

TEST_REST_TRACKING = "MLflow's tests/tracking/test_rest_tracking.py"
BULK_VALIDATION = f"{TEST_REST_TRACKING}, test_get_metric_history_bulk_rejects_invalid_requests"
MESSAGES_READ: dict[str, str] = {
    "experiments/create: missing name": f"{TEST_REST_TRACKING}, test_create_experiment_validation",
    "experiments/create: name a number": f"{TEST_REST_TRACKING}, test_create_experiment_validation",
    "experiments/create: artifact_location a number": f"{TEST_REST_TRACKING}, test_create_experiment_validation",
    "experiments/create: tags a string": f"{TEST_REST_TRACKING}, test_create_experiment_validation",
    "runs/log-metric: run_id a number": f"{TEST_REST_TRACKING}, test_log_metric_validation",
    "runs/log-metric: key a number": f"{TEST_REST_TRACKING}, test_log_metric_validation",
    "runs/log-metric: step not a number": f"{TEST_REST_TRACKING}, test_log_metric_validation",
    "runs/log-metric: timestamp not a number": f"{TEST_REST_TRACKING}, test_log_metric_validation",
    "runs/log-metric: run_id null": f"{TEST_REST_TRACKING}, test_log_metric_validation",
    "runs/log-metric: missing key": f"{TEST_REST_TRACKING}, test_log_metric_validation",
    "runs/log-metric: key null": f"{TEST_REST_TRACKING}, test_log_metric_validation",
    "runs/log-parameter: run_id a number": f"{TEST_REST_TRACKING}, test_log_param_validation",
    "runs/log-parameter: key a number": f"{TEST_REST_TRACKING}, test_log_param_validation",
    "runs/set-tag: run_id a number": f"{TEST_REST_TRACKING}, test_set_tag_validation",
    "runs/set-tag: value a number": f"{TEST_REST_TRACKING}, test_set_tag_validation",
    "runs/set-tag: missing key": f"{TEST_REST_TRACKING}, test_set_tag_validation",
    "runs/delete-tag: unknown run": f"{TEST_REST_TRACKING}, test_delete_tag (r'Run .+ not found')",
    "runs/delete-tag: missing tag": f"{TEST_REST_TRACKING}, test_delete_tag ('No tag with name: fakeTag')",
    "runs/delete-tag: deleted run": f"{TEST_REST_TRACKING}, test_delete_tag ('The run <id> must be in')",
    "runs/log-batch: metrics a string": f"{TEST_REST_TRACKING}, test_log_batch_validation",
    "runs/log-batch: params a string": f"{TEST_REST_TRACKING}, test_log_batch_validation",
    "runs/log-batch: tags a string": f"{TEST_REST_TRACKING}, test_log_batch_validation",
    "runs/log-batch: metric without timestamp": f"{TEST_REST_TRACKING}, test_log_batch_validation",
    "runs/log-inputs: missing run id": f"{TEST_REST_TRACKING}, test_log_inputs_validation",
    "runs/search: max_results too large": f"{TEST_REST_TRACKING}, test_search_validation",
    "metrics/get-history-bulk: no run id": BULK_VALIDATION,
    "metrics/get-history-bulk: 101 run ids": BULK_VALIDATION,
    "metrics/get-history-bulk: no metric key": BULK_VALIDATION,
}
"""The cases whose error message is compared, and who reads it (elsewhere only status and code count:
some of MLflow's messages embed raw SQL or a Python set in a random order)."""

# -- model registry -----------------------------------------------------------------------------

REGISTERED = Step("POST", "/registered-models/create", {"name": "{unique}"})
PROMPT = Step(
    "POST",
    "/registered-models/create",
    {"name": "{unique}", "tags": [{"key": "mlflow.prompt.is_prompt", "value": "true"}]},
)
GET_REGISTERED = Step("GET", "/registered-models/get", query={"name": "{unique}"})
IS_PROMPT = [{"key": "mlflow.prompt.is_prompt", "value": "true"}]
HOOK_EVENTS = [{"entity": "REGISTERED_MODEL", "action": "CREATED"}]

REGISTRY = [
    post("registered-models/create: name only", "/registered-models/create", {"name": "{unique}"}),
    post(
        "registered-models/create: tags and description",
        "/registered-models/create",
        {"name": "{unique}", "tags": [{"key": "team", "value": "a"}], "description": "first"},
        after=(GET_REGISTERED,),
    ),
    post("registered-models/create: missing name", "/registered-models/create", {}),
    post("registered-models/create: duplicate", "/registered-models/create", {"name": "{unique}"}, setup=(REGISTERED,)),
    get("registered-models/get: unknown", "/registered-models/get", {"name": "{unique}"}),
    get(
        "registered-models/search: by name",
        "/registered-models/search",
        {"filter": "name = '{unique}'"},
        setup=(REGISTERED,),
    ),
    get(
        "registered-models/search: prompts left out",
        "/registered-models/search",
        {"filter": "name = '{unique}'"},
        setup=(PROMPT,),
    ),
    post(
        "registered-models/set-tag: a tag",
        "/registered-models/set-tag",
        {"name": "{unique}", "key": "k", "value": "v"},
        setup=(REGISTERED,),
        after=(GET_REGISTERED,),
    ),
    post(
        "registered-models/alias: unknown version",
        "/registered-models/alias",
        {"name": "{unique}", "alias": "champion", "version": "1"},
        setup=(REGISTERED,),
    ),
    get(
        "model-versions/get: unknown version",
        "/model-versions/get",
        {"name": "{unique}", "version": "1"},
        setup=(REGISTERED,),
    ),
    post(
        "model-versions/create: a prompt version",
        "/model-versions/create",
        {
            "name": "{unique}",
            "source": "dummy-source",
            "tags": [*IS_PROMPT, {"key": "mlflow.prompt.text", "value": "Hi"}],
        },
        setup=(PROMPT,),
    ),
    post(
        "model-versions/create: a prompt version with a path source",
        "/model-versions/create",
        {"name": "{unique}", "source": "/etc/passwd", "tags": IS_PROMPT},
        setup=(PROMPT,),
    ),
    get("webhooks: list", "/webhooks"),
    get("webhooks/<id>: unknown", "/webhooks/00000000-0000-0000-0000-000000000000"),
    post("webhooks: missing name", "/webhooks", {}),
    post(
        "webhooks: invalid name", "/webhooks", {"name": "bad name", "url": "https://x.invalid/h", "events": HOOK_EVENTS}
    ),
    post("webhooks: ftp url", "/webhooks", {"name": "h", "url": "ftp://x.invalid/h", "events": HOOK_EVENTS}),
]

V3 = "/api/3.0/mlflow"
TRACE = Step(
    "POST",
    "/traces",
    {
        "trace": {
            "trace_info": {
                "trace_id": "tr-{unique}",
                "trace_location": {
                    "type": "MLFLOW_EXPERIMENT",
                    "mlflow_experiment": {"experiment_id": "{experiment_id}"},
                },
                "request_time": "2026-01-02T03:04:05.678Z",
                "execution_duration": "1.5s",
                "state": "OK",
            }
        }
    },
    prefix=V3,
    save={"trace_id": "trace.trace_info.trace_id"},
)
TRACES = [
    post(
        "traces/link-to-run: a trace to a run",
        "/traces/link-to-run",
        {"trace_ids": ["{trace_id}"], "run_id": "{run_id}"},
        setup=(EXPERIMENT, RUN, TRACE),
    ),
    post(
        "traces/link-to-run: unknown trace",
        "/traces/link-to-run",
        {"trace_ids": ["tr-{unique}"], "run_id": "{run_id}"},
        setup=(EXPERIMENT, RUN),
        theirs=Answer(200),
        ours=Answer(404, "RESOURCE_DOES_NOT_EXIST", "not found"),
    ),
    post("traces/link-to-run: no run id", "/traces/link-to-run", {"trace_ids": ["tr-1"]}),
    post("traces/link-to-run: trace ids a string", "/traces/link-to-run", {"trace_ids": "tr-1", "run_id": "r"}),
    post(
        "traces/link-prompts: a prompt version",
        "/traces/link-prompts",
        {"trace_id": "{trace_id}", "prompt_versions": [{"name": "greeting", "version": "1"}]},
        setup=(EXPERIMENT, TRACE),
    ),
    post("traces/link-prompts: no prompt versions", "/traces/link-prompts", {"trace_id": "tr-1"}),
    post("traces/batchGetInfos: no trace ids", "/traces/batchGetInfos", {}, prefix=V3),
    post(
        "traces/calculate-filter-correlation: no filters",
        "/traces/calculate-filter-correlation",
        {"experiment_ids": ["0"]},
        prefix=V3,
    ),
    get("get-trace-artifact: no request id", "/get-trace-artifact", prefix=AJAX),
]

ALL_CASES: list[Case] = [
    *EXPERIMENTS,
    *EXPERIMENT_SEARCH,
    *RUNS,
    *LOG_METRIC,
    *LOG_PARAM,
    *SET_TAG,
    *DELETE_TAG,
    *LOG_BATCH,
    *LOG_INPUTS,
    *LOG_OUTPUTS,
    *RUN_SEARCH,
    *HISTORY,
    *HISTORY_BULK,
    *ARTIFACT_LISTS,
    *LOGGED_MODELS,
    *MODEL_SEARCH,
    *REGISTRY,
    *TRACES,
    *OTHER,
]
CASES = [replace(case, compare_message=True) if case.name in MESSAGES_READ else case for case in ALL_CASES]
assert len({case.name for case in CASES}) == len(CASES), "case names must be unique"
assert set(MESSAGES_READ) <= {case.name for case in CASES}, "MESSAGES_READ names a case that does not exist"
