"""The metadata store: experiments, runs and logged models in SQLite or PostgreSQL (SQLAlchemy 2)."""
