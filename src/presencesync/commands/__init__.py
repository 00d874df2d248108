"""The product's own commands of `presencesync` (see `presencesync.cli` for what a command is).
A new one: a module here, a line in `cli.BUILTIN` and one in pyproject.toml's
`[project.entry-points."presencesync.commands"]`."""
