"""The database: models, engines, migrations, bootstrap and the deployment it serves."""

SCHEMA = "est"  # every table, type and function of the deployment lives in this schema
