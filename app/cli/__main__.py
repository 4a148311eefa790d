"""`python -m app.cli`: the same as the `est` command."""

from app.cli import main

main()
