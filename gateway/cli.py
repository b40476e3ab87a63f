"""The `artifact-gateway` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, get_args, get_origin

from gateway import __version__
from gateway.logs import configure
from gateway.server import serve
from gateway.settings import ENV_PREFIX, Settings, SettingsError, load_settings
from gateway.store.startup import migrate_store, without_password

_DESCRIPTION = """\
A streaming artifact service that speaks MLflow's REST protocol. Point the stock mlflow client at
it (MLFLOW_TRACKING_URI=http://HOST:PORT, or mlflow-artifacts://HOST:PORT/... artifact URIs).

Every flag can also be set in the environment (the variable is named after each flag) or in a
TOML file given with --config; flags win over the environment, which wins over the file."""


def _help(name: str) -> str:
    field = Settings.model_fields[name]
    aliases = field.validation_alias.choices if field.validation_alias is not None else []  # type: ignore[union-attr]
    env = ", ".join(str(alias) for alias in aliases)
    default = (
        "none"
        if field.default is None
        else str(field.default).lower()
        if isinstance(field.default, bool)
        else field.default
    )
    return f"{field.description} [env {env}; default {default}]".replace("%", "%%")


def _metavar(name: str, kind: type) -> str:
    for suffix, metavar in (("_seconds", "SECONDS"), ("_mib", "MIB"), ("_uri", "URI"), ("_url", "URL")):
        if name.endswith(suffix):
            return metavar
    if name in ("artifacts_destination", "default_artifact_root"):
        return "URI"
    return "N" if kind is int else "VALUE"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="artifact-gateway", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"artifact-gateway {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serve_parser = commands.add_parser(
        "serve", help="run the server", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for name, field in Settings.model_fields.items():  # every setting is a flag, named after it
        flag = "--" + name.replace("_", "-")
        annotation = field.annotation
        if annotation is bool:
            serve_parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=_help(name))
        elif get_origin(annotation) is Literal:
            serve_parser.add_argument(flag, choices=get_args(annotation), help=_help(name))
        else:
            kind = int if annotation is int else float if annotation is float else str
            serve_parser.add_argument(flag, type=kind, metavar=_metavar(name, kind), help=_help(name))
    add = serve_parser.add_argument
    add(
        "--config",
        type=Path,
        metavar="FILE",
        help=f"TOML file of settings named like the flags, e.g. port = 5000 [env {ENV_PREFIX}CONFIG]",
    )
    migrate = commands.add_parser(
        "migrate",
        help="create or upgrade the metadata store's schema, then exit",
        description="Bring the metadata store's schema to the newest revision and exit, e.g. once per release from "
        "a Kubernetes Job before the servers roll. `serve` does the same at start, so this is never required; "
        "processes migrating at once take turns (a file lock on SQLite, an advisory lock on PostgreSQL).",
    )
    migrate.add_argument(
        "--backend-store-uri",
        metavar="URI",
        help=f"metadata store [env {ENV_PREFIX}BACKEND_STORE_URI, MLFLOW_BACKEND_STORE_URI; default sqlite:///mlruns.db]",
    )
    _add_user_commands(commands)
    _add_maintenance_commands(commands)
    return parser


_IMPORT_DESCRIPTION = """\
Copy an MLflow server's metadata into the gateway's store, keeping every id (experiments, runs with
params, tags, every metric point, inputs and outputs, logged models, registered models with their
versions, tags and aliases, traces with spans and assessments), so runs:/ and models:/ URIs and
bookmarked links keep working. The source is read directly, never through MLflow's server:
sqlite:///mlflow.db or postgresql://... (MLflow schemas 2.0 to 3.17) or a file store directory (./mlruns).

Artifacts stay where they are: point the gateway's --artifacts-destination at the old server's
(mlflow-artifacts:/ locations keep their meaning). Local paths (a file store's) are listed as needing
a move; --copy-artifacts-to copies them, verified by SHA-256, and rewrites their locations.

Each batch is one transaction and whatever is already there is skipped, so after a crash the same
command continues. It ends with a verification counting every entity on both sides and comparing a
sample of metric histories point by point. Exit codes: 0 done, 1 verification found differences,
2 unusable source or store, 3 ids colliding with the store's (nothing written)."""

_GC_DESCRIPTION = """\
Permanently delete runs in the deleted state (their metadata and artifact folders) and experiments in
the deleted state (with all their runs, logged models and traces), as `mlflow gc` does. Each deletion
is logged as an audit line on stderr. Safe while servers run on the same store: rows are deleted in
short transactions, and only rows in the deleted state are touched."""


def _add_maintenance_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    store_help = f"the gateway's metadata store [env {ENV_PREFIX}BACKEND_STORE_URI; default sqlite:///mlruns.db]"
    importer = commands.add_parser(
        "import-mlflow",
        help="copy an MLflow server's data (database or ./mlruns) into the store",
        description=_IMPORT_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    importer.add_argument(
        "--from",
        dest="source",
        metavar="URI",
        required=True,
        help="the MLflow store to read: sqlite:///mlflow.db, postgresql://..., or a ./mlruns directory",
    )
    importer.add_argument("--backend-store-uri", metavar="URI", help=store_help)
    importer.add_argument(
        "--dry-run", action="store_true", help="report what would be imported and any conflicts; write nothing"
    )
    importer.add_argument(
        "--copy-artifacts-to",
        metavar="URI",
        help="copy artifacts kept on local paths into this destination (a directory, s3://bucket/prefix or "
        "wasbs://...: the gateway's --artifacts-destination) and point their locations at mlflow-artifacts:/",
    )
    importer.add_argument(
        "--on-conflict",
        choices=("fail", "skip"),
        default="fail",
        help="when an id or name is already the store's for something else: fail (write nothing, the default) "
        "or skip (import the rest, leave those out)",
    )
    gc = commands.add_parser(
        "gc",
        help="permanently delete runs and experiments in the deleted state, with their artifacts",
        description=_GC_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gc.add_argument("--backend-store-uri", metavar="URI", help=store_help)
    gc.add_argument(
        "--artifacts-destination",
        metavar="URI",
        help=f"where mlflow-artifacts:/ locations live, as given to serve [env {ENV_PREFIX}ARTIFACTS_DESTINATION; "
        "default ./mlartifacts]",
    )
    gc.add_argument(
        "--older-than",
        metavar="AGE",
        help="only what was deleted longer ago than this, e.g. 30d, 12h, 1d2h3m4s (default: everything deleted)",
    )
    gc.add_argument(
        "--experiment-ids", metavar="IDS", help="comma-separated experiments to collect (default: all deleted)"
    )
    gc.add_argument("--run-ids", metavar="IDS", help="comma-separated deleted runs to collect (default: all deleted)")
    gc.add_argument("--dry-run", action="store_true", help="list what would be deleted; delete nothing")


def _add_user_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument(
        "--backend-store-uri",
        metavar="URI",
        help=f"metadata store holding users and tokens [env {ENV_PREFIX}BACKEND_STORE_URI; default "
        "sqlite:///mlruns.db]",
    )
    password = argparse.ArgumentParser(add_help=False)
    password.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input, not a prompt"
    )
    permissions = ("read", "write", "admin")

    users = commands.add_parser(
        "users",
        help="manage the users that may call the server with --auth",
        description="Users sign in with HTTP Basic (MLFLOW_TRACKING_USERNAME/PASSWORD). read: read runs and "
        "artifacts; write: also create, change and delete; admin: also list users and tokens over HTTP.",
    )
    user = users.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = user.add_parser("add", parents=[store, password], help="add a user (asks for the password)")
    add.add_argument("username")
    add.add_argument("--permission", choices=permissions, required=True)
    user.add_parser("set-password", parents=[store, password], help="change a user's password").add_argument("username")
    set_permission = user.add_parser("set-permission", parents=[store], help="change a user's permission")
    set_permission.add_argument("username")
    set_permission.add_argument("permission", choices=permissions)
    user.add_parser("remove", parents=[store], help="remove a user and their tokens").add_argument("username")
    user.add_parser("list", parents=[store], help="list users")

    tokens = commands.add_parser(
        "tokens",
        help="manage API tokens for --auth",
        description="Tokens are sent as Bearer credentials (MLFLOW_TRACKING_TOKEN); each belongs to a user and "
        "never has more permission than that user.",
    )
    token = tokens.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = token.add_parser("create", parents=[store], help="create a token; its secret is printed once")
    create.add_argument("--user", required=True, help="the user the token acts as")
    create.add_argument("--name", required=True, help="what the token is for, e.g. ci-training")
    create.add_argument("--permission", choices=permissions, help="default: the user's permission")
    create.add_argument("--expires-days", type=int, metavar="DAYS", help="default: never expires")
    token.add_parser("revoke", parents=[store], help="revoke a token by its id").add_argument("token_id")
    token.add_parser("list", parents=[store], help="list tokens (ids, owners, permissions; never secrets)")


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    command = args.pop("command")
    if command == "migrate":
        try:
            store_uri = load_settings({"backend_store_uri": args.pop("backend_store_uri")}).backend_store_uri
            migrate_store(store_uri)
        except SettingsError as exc:
            print(f"artifact-gateway: error: {exc}", file=sys.stderr)
            return 2
        print(f"the metadata store {without_password(store_uri)} has the newest schema")
        return 0
    if command in ("users", "tokens"):
        from gateway.auth.commands import run_user_command  # the database stack, kept out of `serve`

        try:
            store_uri = load_settings({"backend_store_uri": args.pop("backend_store_uri")}).backend_store_uri
            return run_user_command(command, args, store_uri)
        except SettingsError as exc:
            print(f"artifact-gateway: error: {exc}", file=sys.stderr)
            return 2
    if command in ("import-mlflow", "gc"):
        try:
            settings = load_settings(
                {
                    "backend_store_uri": args.pop("backend_store_uri"),
                    "artifacts_destination": args.pop("artifacts_destination", None),
                }
            )
        except SettingsError as exc:
            print(f"artifact-gateway: error: {exc}", file=sys.stderr)
            return 2
        if command == "import-mlflow":
            from gateway.import_mlflow.command import ImportOptions
            from gateway.import_mlflow.command import main as import_main

            return import_main(ImportOptions(backend_store_uri=settings.backend_store_uri, **args))
        from gateway.gc.command import GcOptions
        from gateway.gc.command import main as gc_main

        return gc_main(GcOptions(settings.backend_store_uri, settings.artifacts_destination, **args))
    config = args.pop("config")
    if config is None and (env_config := os.environ.get(f"{ENV_PREFIX}CONFIG")):
        config = Path(env_config)
    try:
        settings = load_settings(args, config)
        configure(settings.log_level)
        if command == "serve":
            serve(settings)
    except SettingsError as exc:
        print(f"artifact-gateway: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
