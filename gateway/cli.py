"""The `artifact-gateway` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway import __version__
from gateway.logs import configure
from gateway.server import serve
from gateway.settings import ENV_PREFIX, Settings, SettingsError, load_settings

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="artifact-gateway", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"artifact-gateway {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serve_parser = commands.add_parser(
        "serve", help="run the server", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = serve_parser.add_argument
    add("--host", help=_help("host"))
    add("--port", type=int, help=_help("port"))
    add("--workers", type=int, help=_help("workers"))
    add("--artifacts-destination", metavar="URI", help=_help("artifacts_destination"))
    add("--artifacts-only", action="store_const", const=True, help=_help("artifacts_only"))
    add("--serve-artifacts", action=argparse.BooleanOptionalAction, help=_help("serve_artifacts"))
    add("--backend-store-uri", metavar="URI", help=_help("backend_store_uri"))
    add("--default-artifact-root", metavar="URI", help=_help("default_artifact_root"))
    add("--fsync", action=argparse.BooleanOptionalAction, help=_help("fsync"))
    add("--staging-ttl-seconds", type=float, metavar="SECONDS", help=_help("staging_ttl_seconds"))
    add("--shutdown-timeout-seconds", type=float, metavar="SECONDS", help=_help("shutdown_timeout_seconds"))
    add("--log-level", choices=["debug", "info", "warning", "error"], help=_help("log_level"))
    add(
        "--config",
        type=Path,
        metavar="FILE",
        help=f"TOML file of settings named like the flags, e.g. port = 5000 [env {ENV_PREFIX}CONFIG]",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    command = args.pop("command")
    config = args.pop("config")
    if config is None and (env_config := _env_config()):
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


def _env_config() -> str | None:
    import os

    return os.environ.get(f"{ENV_PREFIX}CONFIG")


if __name__ == "__main__":
    sys.exit(main())
