"""Page tokens: what a `next_page_token` carries, and reading a request's `page_token` back.

A token is base64 of a JSON object. A listing read by offset carries `{"offset": n}`, as MLflow's
tokens do, so a client may pass either server's; a listing read by position carries the sort key of
the page's last row (`{"after": ...}`: integers, or an artifact listing's entry name), and the next
page is found in the index. Anything else is a 400 that says what to send.
"""

from __future__ import annotations

import base64
import binascii
import json

from gateway.store.errors import InvalidValue

MAX_OFFSET = 1 << 53
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

NOT_A_PAGE = "Invalid page_token: pass back the next_page_token of the previous page"


def _fields(token: object) -> dict[str, object]:
    if not isinstance(token, str):
        raise InvalidValue(NOT_A_PAGE)
    try:
        fields = json.loads(base64.urlsafe_b64decode(token.encode()))  # MLflow's standard base64 too
    except (binascii.Error, ValueError):
        raise InvalidValue(NOT_A_PAGE) from None
    if not isinstance(fields, dict):
        raise InvalidValue(NOT_A_PAGE)
    return fields


def _token(fields: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode()


def offset_token(offset: int, search: str | None = None) -> str:
    """The token of the page that starts at `offset`; with `search`, bound to that search (`page_offset`)."""
    return _token({"offset": offset} if search is None else {"offset": offset, "search": search})


def page_offset(token: object, search: str | None = None) -> int:
    """Where a page read by offset starts (0 without a token); with `search`, the token must carry the
    same one: a token is bound to the search that returned it."""
    if token is None or token == "":
        return 0
    fields = _fields(token)
    offset = fields.get("offset")
    if type(offset) is not int or not 0 <= offset <= MAX_OFFSET:
        raise InvalidValue(NOT_A_PAGE)
    if search is not None and fields.get("search") != search:
        raise InvalidValue(
            "Invalid page_token: it continues another search; send the experiment_ids, filter, datasets and "
            "order_by of the request that returned it"
        )
    return offset


def position_token(position: tuple[int, ...]) -> str:
    """The token of the page after the row whose sort key is `position`: the next page is found in the
    index, where an offset made each page read and skip every row before it."""
    return _token({"after": list(position)})


def page_position(token: object, columns: tuple[str, ...]) -> tuple[int, ...] | None:
    """Where a page read by position starts: after the row whose sort key, the integer `columns`, the
    token carries (`position_token`); None for the first page."""
    if token is None or token == "":
        return None
    after = _fields(token).get("after")
    if not (
        isinstance(after, list)
        and len(after) == len(columns)
        and all(type(value) is int and INT64_MIN <= value <= INT64_MAX for value in after)
    ):
        raise InvalidValue(NOT_A_PAGE)
    return tuple(after)


def name_token(name: str) -> str:
    """The token of an artifact listing's page after the entry whose sort key is `name`."""
    return _token({"after": name})


def page_name(token: object) -> str | None:
    """Where an artifact listing's page starts: after the name the token carries (`name_token`); None
    for the first page."""
    if token is None or token == "":
        return None
    after = _fields(token).get("after")
    if not isinstance(after, str):
        raise InvalidValue(NOT_A_PAGE)
    return after
