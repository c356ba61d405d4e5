"""One module per command. A module defines `NAME`, `SUMMARY`, `EXAMPLES`, `add_arguments(p)`
and `request(ns)` (the platform's side, for `minewatch cmd NAME`), `async run(gw, req)` (the
gateway's side: a dict, or a `CommandError`) and `show(result, lang)` (the result for people);
its request is described by `config/schema/cmd_<NAME>.schema.json`. Adding a command is adding
a module here and its schema: the registry, the service and the CLI find it."""
