"""The HTTP kit every capability shares: the access table, errors, middleware, request values, app keys,
the OpenAPI document and the meta routes (health, version, server-info, metrics)."""
