"""The OpenAPI description of the admin API's route (see `gateway.http.openapi`)."""

from __future__ import annotations

from gateway.http.meta_openapi import meta
from gateway.http.openapi_schemas import INT64_LIKE, STRING, Operations, array, json_ok, obj
from gateway.http.prefixes import ADMIN_PREFIX

# Keyed by (API family, METHOD, path below the family's prefix): the admin prefix is no API family.
OPERATIONS: Operations = {
    ("", "GET", f"{ADMIN_PREFIX}/users"): meta(
        "With --auth, for admins: the users and tokens that may call this server (never a secret)",
        json_ok(
            obj(
                {
                    "users": array(obj({"username": STRING, "permission": STRING, "creation_time": INT64_LIKE})),
                    "tokens": array(
                        obj(
                            {
                                "token_id": STRING,
                                "username": STRING,
                                "name": STRING,
                                "permission": STRING,
                                "creation_time": INT64_LIKE,
                                "expiry_time": {**INT64_LIKE, "nullable": True},
                            }
                        )
                    ),
                },
                ("users", "tokens"),
            )
        ),
    ),
}
