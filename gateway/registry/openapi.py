"""The OpenAPI descriptions of the model registry's routes and the component schemas of its objects
(registered models, model versions, their tags and aliases); see `gateway.http.openapi`."""

from __future__ import annotations

from typing import Any

from gateway.http.openapi_schemas import (
    EMPTY_OK,
    INTEGER,
    PAGE_TOKEN,
    STRING,
    Operation,
    Operations,
    Schema,
    array,
    json_body,
    json_ok,
    obj,
    op,
    query,
    ref,
)
from gateway.registry.store.values import (
    DEFAULT_MODELS,
    DEFAULT_VERSIONS,
    MAX_ALIAS,
    MAX_MODELS,
    MAX_NAME,
    MAX_TAG_KEY,
    MAX_TAG_VALUE,
    MAX_VERSIONS,
    STAGES,
)
from gateway.registry.webhooks.events import VALID_ACTIONS

NAME: Schema = {"type": "string", "minLength": 1, "maxLength": MAX_NAME, "description": "no '/' or ':'"}
VERSION: Schema = {"type": "string", "pattern": "^[0-9]+$", "description": "the version number, as a string"}
ALIAS: Schema = {"type": "string", "minLength": 1, "maxLength": MAX_ALIAS, "pattern": "^[\\w\\-]+$"}
STAGE: Schema = {"type": "string", "description": f"one of {', '.join(STAGES)} (any case)"}
TAG: Schema = obj(
    {
        "key": {"type": "string", "minLength": 1, "maxLength": MAX_TAG_KEY},
        "value": {"type": "string", "maxLength": MAX_TAG_VALUE},
    },
    ("key", "value"),
)

SCHEMAS: dict[str, Schema] = {
    "RegistryTag": TAG,
    "ModelVersion": obj(
        {
            "name": STRING,
            "version": STRING,
            "creation_timestamp": INTEGER,
            "last_updated_timestamp": INTEGER,
            "user_id": STRING,
            "current_stage": STRING,
            "description": STRING,
            "source": STRING,
            "run_id": STRING,
            "status": {"type": "string", "enum": ["PENDING_REGISTRATION", "FAILED_REGISTRATION", "READY"]},
            "status_message": STRING,
            "tags": array(ref("RegistryTag")),
            "run_link": STRING,
            "aliases": array(STRING),
        },
        ("name", "version"),
    ),
    "RegisteredModel": obj(
        {
            "name": STRING,
            "creation_timestamp": INTEGER,
            "last_updated_timestamp": INTEGER,
            "description": STRING,
            "latest_versions": array(ref("ModelVersion"), description="the newest version of each stage"),
            "tags": array(ref("RegistryTag")),
            "aliases": array(obj({"alias": STRING, "version": STRING})),
        },
        ("name",),
    ),
}
"""The component schemas of the registry's objects, in the document's order."""

WEBHOOK_EVENT: Schema = obj(
    {
        "entity": {"type": "string", "enum": sorted(entity.upper() for entity in VALID_ACTIONS)},
        "action": {
            "type": "string",
            "enum": sorted({a.upper() for actions in VALID_ACTIONS.values() for a in actions}),
        },
    },
    ("entity", "action"),
    description="an entity and one of its actions (REGISTERED_MODEL: CREATED; MODEL_VERSION_TAG: SET, DELETED; ...)",
)
WEBHOOK_STATUS: Schema = {"type": "string", "enum": ["ACTIVE", "DISABLED"]}
SCHEMAS["WebhookEvent"] = WEBHOOK_EVENT
SCHEMAS["Webhook"] = obj(
    {
        "webhook_id": STRING,
        "name": STRING,
        "description": STRING,
        "url": STRING,
        "events": array(ref("WebhookEvent")),
        "status": WEBHOOK_STATUS,
        "creation_timestamp": INTEGER,
        "last_updated_timestamp": INTEGER,
    },
    ("webhook_id", "name", "url", "events", "status"),
    description="a webhook as MLflow answers it (its secret is never answered)",
)
WEBHOOK_NAME: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": 63,
    "pattern": "^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$",
}
WEBHOOK_URL: Schema = {
    **STRING,
    "description": "https to a host resolving to public addresses only, unless the operator allows the host "
    "(--webhook-allowed-hosts)",
}
WEBHOOK_OK = json_ok(obj({"webhook": ref("Webhook")}, ("webhook",)))
WEBHOOK_ID = {"name": "webhook_id", "in": "path", "required": True, "schema": STRING}

MODEL_OK = json_ok(obj({"registered_model": ref("RegisteredModel")}, ("registered_model",)))
VERSION_OK = json_ok(obj({"model_version": ref("ModelVersion")}, ("model_version",)))
VERSIONS_OK = json_ok(obj({"model_versions": array(ref("ModelVersion"))}))
NAME_QUERY = query("name", NAME, "the registered model's name", required=True)
VERSION_QUERY = query("version", VERSION, "the version number", required=True)
SOURCE: Schema = {
    **STRING,
    "description": "models:/m-<logged model id>, models:/<name>/<version>, runs:/<run_id>/<path>, or an "
    "artifact URI inside the artifacts of the run (run_id) or logged model (model_id) given with it; local "
    "paths, file: URIs and other hosts are refused",
}


def _post(summary: str, body: Schema, ok: dict[str, Any]) -> Operation:
    return op(summary, ok, tag="registry", requestBody=json_body(body))


def _get(summary: str, parameters: list[Schema], ok: dict[str, Any]) -> Operation:
    return op(summary, ok, tag="registry", parameters=parameters)


def _search(kind: str, default: int, limit: int, filter_text: str, order_text: str) -> list[Schema]:
    return [
        query("filter", {**STRING, "description": filter_text}),
        query("max_results", {"type": "integer", "minimum": 1, "maximum": limit, "default": default}),
        query("order_by", array(STRING, description=order_text)),
        query("page_token", PAGE_TOKEN),
    ]


REGISTRY: dict[tuple[str, str], Operation] = {
    ("POST", "/registered-models/create"): _post(
        "Create a registered model (400 RESOURCE_ALREADY_EXISTS when the name is taken)",
        obj({"name": NAME, "tags": array(ref("RegistryTag")), "description": STRING}, ("name",)),
        MODEL_OK,
    ),
    ("POST", "/registered-models/rename"): _post(
        "Rename a registered model (its versions follow)",
        obj({"name": NAME, "new_name": NAME}, ("name", "new_name")),
        MODEL_OK,
    ),
    ("PATCH", "/registered-models/update"): _post(
        "Set a registered model's description", obj({"name": NAME, "description": STRING}, ("name",)), MODEL_OK
    ),
    ("DELETE", "/registered-models/delete"): _post(
        "Delete a registered model with its versions, tags and aliases (metadata only: no artifact is deleted)",
        obj({"name": NAME}, ("name",)),
        EMPTY_OK,
    ),
    ("GET", "/registered-models/get"): _get("Get a registered model", [NAME_QUERY], MODEL_OK),
    ("GET", "/registered-models/search"): _get(
        "Search registered models",
        _search(
            "registered models",
            DEFAULT_MODELS,
            MAX_MODELS,
            "comparisons joined by AND: name (=, !=, LIKE, ILIKE, IN, NOT IN), tags.<key> (=, !=, LIKE, ILIKE) "
            "against quoted strings; LIKE is case-sensitive, ILIKE is not",
            "name, creation_timestamp or last_updated_timestamp, each ASC (the default) or DESC; name ASC breaks ties",
        ),
        json_ok(obj({"registered_models": array(ref("RegisteredModel")), "next_page_token": STRING})),
    ),
    ("POST", "/registered-models/get-latest-versions"): _post(
        "The newest version of each stage (of the stages given, else of all)",
        obj({"name": NAME, "stages": array(STAGE)}, ("name",)),
        VERSIONS_OK,
    ),
    ("GET", "/registered-models/get-latest-versions"): _get(
        "The newest version of each stage (of the stages given, else of all)",
        [NAME_QUERY, query("stages", array(STAGE))],
        VERSIONS_OK,
    ),
    ("POST", "/registered-models/set-tag"): _post(
        "Set a registered model's tag", obj({"name": NAME, **TAG["properties"]}, ("name", "key", "value")), EMPTY_OK
    ),
    ("DELETE", "/registered-models/delete-tag"): _post(
        "Delete a registered model's tag (absent is fine)",
        obj({"name": NAME, "key": STRING}, ("name", "key")),
        EMPTY_OK,
    ),
    ("POST", "/registered-models/alias"): _post(
        "Point an alias at a version ('latest' and v<number> are reserved)",
        obj({"name": NAME, "alias": ALIAS, "version": VERSION}, ("name", "alias", "version")),
        EMPTY_OK,
    ),
    ("DELETE", "/registered-models/alias"): _post(
        "Delete an alias", obj({"name": NAME, "alias": ALIAS}, ("name", "alias")), EMPTY_OK
    ),
    ("GET", "/registered-models/alias"): _get(
        "The version an alias points at ('latest': the highest version)",
        [NAME_QUERY, query("alias", ALIAS, required=True)],
        VERSION_OK,
    ),
    ("POST", "/model-versions/create"): _post(
        "Register a new version of a model: the next number of that model, never reused",
        obj(
            {
                "name": NAME,
                "source": SOURCE,
                "run_id": STRING,
                "model_id": STRING,
                "run_link": STRING,
                "description": STRING,
                "tags": array(ref("RegistryTag")),
            },
            ("name", "source"),
        ),
        VERSION_OK,
    ),
    ("PATCH", "/model-versions/update"): _post(
        "Set a version's description",
        obj({"name": NAME, "version": VERSION, "description": STRING}, ("name", "version")),
        VERSION_OK,
    ),
    ("POST", "/model-versions/transition-stage"): _post(
        "Move a version to a stage; archive_existing_versions archives the others in Staging or Production",
        obj(
            {"name": NAME, "version": VERSION, "stage": STAGE, "archive_existing_versions": {"type": "boolean"}},
            ("name", "version", "stage"),
        ),
        VERSION_OK,
    ),
    ("DELETE", "/model-versions/delete"): _post(
        "Delete a version with its tags and aliases (metadata only; its number is not given out again)",
        obj({"name": NAME, "version": VERSION}, ("name", "version")),
        EMPTY_OK,
    ),
    ("GET", "/model-versions/get"): _get("Get a model version", [NAME_QUERY, VERSION_QUERY], VERSION_OK),
    ("GET", "/model-versions/search"): _get(
        "Search model versions",
        _search(
            "model versions",
            DEFAULT_VERSIONS,
            MAX_VERSIONS,
            "comparisons joined by AND: name, run_id (=, !=, LIKE, ILIKE, IN, NOT IN), source_path (=, !=, "
            "LIKE, ILIKE), version_number (=, !=, <, <=, >, >= against an integer), tags.<key> (=, !=, LIKE, "
            "ILIKE)",
            "name, version_number, creation_timestamp or last_updated_timestamp, each ASC or DESC; default "
            "last_updated_timestamp DESC, name ASC, version_number DESC",
        ),
        json_ok(obj({"model_versions": array(ref("ModelVersion")), "next_page_token": STRING})),
    ),
    ("GET", "/model-versions/get-download-uri"): _get(
        "Where the version's files are (a logged model's or run's artifact location)",
        [NAME_QUERY, VERSION_QUERY],
        json_ok(obj({"artifact_uri": STRING}, ("artifact_uri",))),
    ),
    ("POST", "/model-versions/set-tag"): _post(
        "Set a version's tag",
        obj({"name": NAME, "version": VERSION, **TAG["properties"]}, ("name", "version", "key", "value")),
        EMPTY_OK,
    ),
    ("DELETE", "/model-versions/delete-tag"): _post(
        "Delete a version's tag (absent is fine)",
        obj({"name": NAME, "version": VERSION, "key": STRING}, ("name", "version", "key")),
        EMPTY_OK,
    ),
}

WEBHOOKS: dict[tuple[str, str], Operation] = {
    ("POST", "/webhooks"): _post(
        "Create a webhook for registry events (its URL checked against the destination policy)",
        obj(
            {
                "name": WEBHOOK_NAME,
                "url": WEBHOOK_URL,
                "events": array(ref("WebhookEvent"), minItems=1),
                "description": STRING,
                "secret": {**STRING, "description": "signs each delivery (X-MLflow-Signature: v1,<HMAC-SHA256>)"},
                "status": WEBHOOK_STATUS,
            },
            ("name", "url", "events"),
        ),
        WEBHOOK_OK,
    ),
    ("GET", "/webhooks"): _get(
        "List webhooks, newest first",
        [
            query("max_results", {"type": "integer", "minimum": 0, "maximum": 1000, "default": 100}),
            query("page_token", PAGE_TOKEN),
        ],
        json_ok(obj({"webhooks": array(ref("Webhook")), "next_page_token": STRING})),
    ),
    ("GET", "/webhooks/{webhook_id}"): _get("Get a webhook", [WEBHOOK_ID], WEBHOOK_OK),
    ("PATCH", "/webhooks/{webhook_id}"): {
        **_post(
            "Change a webhook's name, description, URL, events, secret or status",
            obj(
                {
                    "name": {**STRING, "description": WEBHOOK_NAME["pattern"]},
                    "description": STRING,
                    "url": WEBHOOK_URL,
                    "events": array(ref("WebhookEvent")),
                    "secret": STRING,
                    "status": WEBHOOK_STATUS,
                }
            ),
            WEBHOOK_OK,
        ),
        "parameters": [WEBHOOK_ID],
    },
    ("DELETE", "/webhooks/{webhook_id}"): {
        **_get("Delete a webhook and its pending deliveries", [WEBHOOK_ID], EMPTY_OK),
    },
    ("POST", "/webhooks/{webhook_id}/test"): {
        **_post(
            "Send MLflow's example payload of one event (default: the webhook's first) and report the answer",
            obj({"event": ref("WebhookEvent")}),
            json_ok(
                obj(
                    {
                        "result": obj(
                            {
                                "success": {"type": "boolean"},
                                "response_status": INTEGER,
                                "response_body": STRING,
                                "error_message": STRING,
                            },
                            ("success",),
                        )
                    },
                    ("result",),
                )
            ),
        ),
        "parameters": [WEBHOOK_ID],
    },
}
REGISTRY.update(WEBHOOKS)

# Keyed by (API family, METHOD, path below the family's prefix): the registry shares tracking's prefixes.
OPERATIONS: Operations = {("tracking", method, path): operation for (method, path), operation in REGISTRY.items()}
