"""Authentication: the middleware, passwords, users and tokens (store, CLI commands, admin API)."""
