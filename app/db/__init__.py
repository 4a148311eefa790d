"""The database: models, engines and sessions, bootstrap and migrations."""
