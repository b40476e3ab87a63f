"""The HTTP kit every capability shares: the access table, errors, middleware, request values, app keys,
the API prefixes, the OpenAPI document builder and the meta routes (health, version, server-info, metrics)."""
