"""`artifact-gateway users ...` and `tokens ...`: manage who may call a server started with --auth."""

from __future__ import annotations

import asyncio
import datetime
import getpass
import sys
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from gateway.auth.store import AuthStore, AuthStoreError, Permission
from gateway.settings import SettingsError
from gateway.store.database import create_engine
from gateway.store.startup import migrate_store, store_unusable


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise SettingsError("no terminal to ask for the password on; pipe it in with --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise SettingsError("the two passwords differ; nothing was changed")
    return first


def _when(epoch: int | None) -> str:
    if epoch is None:
        return "never"
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


async def _run(command: str, args: dict[str, Any], store_uri: str) -> None:
    engine = create_engine(store_uri)
    try:
        store = AuthStore(engine)
        action = args["action"]
        if command == "users":
            await _users(store, action, args)
        else:
            await _tokens(store, action, args)
    finally:
        await engine.dispose()


async def _users(store: AuthStore, action: str, args: dict[str, Any]) -> None:
    name = args.get("username", "")
    if action == "add":
        await store.add_user(name, _read_password(args["password_stdin"]), Permission.parse(args["permission"]))
        print(f"added user '{name}' with {args['permission']} permission")
    elif action == "set-password":
        await store.set_password(name, _read_password(args["password_stdin"]))
        print(f"changed the password of '{name}'; running servers accept the old one for up to 30 s more")
    elif action == "set-permission":
        await store.set_permission(name, Permission.parse(args["permission"]))
        print(f"'{name}' now has {args['permission']} permission (running servers: within 30 s)")
    elif action == "remove":
        await store.remove_user(name)
        print(f"removed user '{name}' and their tokens (running servers: within 30 s)")
    else:
        for user in await store.list_users():
            print(f"{user.username}\t{user.permission}\tcreated {_when(user.creation_time)}")


async def _tokens(store: AuthStore, action: str, args: dict[str, Any]) -> None:
    if action == "create":
        permission = Permission.parse(args["permission"]) if args["permission"] else None
        if args["expires_days"] is not None and args["expires_days"] < 1:
            raise AuthStoreError("--expires-days must be 1 or more")
        info, secret = await store.create_token(args["user"], args["name"], permission, args["expires_days"])
        print(
            f"created token {info.token_id} for '{info.username}' ({info.permission}, expires "
            f"{_when(info.expiry_time)}); it is shown only now:",
            file=sys.stderr,
        )
        print(secret)
    elif action == "revoke":
        await store.revoke_token(args["token_id"])
        print(f"revoked token {args['token_id']} (running servers: within 30 s)")
    else:
        for token in await store.list_tokens():
            print(
                f"{token.token_id}\t{token.username}\t{token.name}\t{token.permission}\t"
                f"created {_when(token.creation_time)}\texpires {_when(token.expiry_time)}"
            )


def run_user_command(command: str, args: dict[str, Any], store_uri: str) -> int:
    """Run `users ACTION` or `tokens ACTION`; 0 on success, 2 with one line on stderr if refused."""
    try:
        migrate_store(store_uri)  # a fresh store gets its tables; an old one its new ones
        asyncio.run(_run(command, args, store_uri))
    except (AuthStoreError, SettingsError) as exc:
        print(f"artifact-gateway: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, SQLAlchemyError) as exc:
        print(f"artifact-gateway: error: {store_unusable(store_uri, exc)}", file=sys.stderr)
        return 2
    return 0
