"""The downlink: the platform's commands to the gateway (docs/commands.md).

`service.py` takes requests from `<prefix>/<site>/<gateway>/cmd/+`, proves them (`keys.py`,
`canonical.py`), answers a redelivery from the ledger and runs each command once, one at a
time; `request.py` reads a request and writes its result; `registry.py` finds the commands, one
module each in `handlers/` (the gateway's side, the CLI's arguments and how a person reads the
result); `remote.py` is the platform's side that `minewatch cmd` plays.
"""
