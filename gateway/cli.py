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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    command = args.pop("command")
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
