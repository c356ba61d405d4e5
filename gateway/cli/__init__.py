"""`minewatch`: the gateway daemon and the field engineer's commands.

    minewatch run --config site.toml                      run the gateway
    minewatch config init --template tailings_pond --out site.toml
                                                          a commented starting config
    minewatch config validate site.toml                   every problem at once, with file:line
    minewatch config show site.toml                       effective settings, defaults marked
    minewatch device scan --port /dev/ttyUSB0 --baud 9600,19200 --parity N,E
                                                          which unit ids answer, at which settings
    minewatch device read --bus tcp://192.0.2.10:502 --unit 1 --address 0 --count 4
                                                          raw registers in every type and order
    minewatch device test DEVICE --config site.toml       one poll with the profile
    minewatch device write --port /dev/ttyUSB0 --unit 1 --address 5 --value 2000
                                                          commissioning write, confirmed, read back
    minewatch device plan --config site.toml [DEVICE]     merged reads vs one per register
    minewatch alerts test --config site.toml              a test alert; the broker's PUBACK
    minewatch alerts list --config site.toml              the site's permanent alert log
    minewatch status --config site.toml                   the running daemon's health
    minewatch replay export.csv --config site.toml --out graded.csv
    minewatch report monthly --config site.toml --month 2026-07 --out report.html
                                                          the month for the city's analyst
    minewatch reading add --config site.toml --point JRX-01 --value 12.41 --by NAME
                                                          a manual (comparison) reading

Every command takes --help (with examples) and --lang zh|en (default: Chinese when LC_ALL,
LC_MESSAGES or LANG starts with zh), before or after the command; tables are for people,
--json for scripts (also before or after). A config's problems are printed in the chosen
language, every one of them.

Serial ports are locked per port (LCK..ttyUSB0 in $MINEWATCH_LOCK_DIR, else /run/lock): the CLI
and the daemon never open one port at once, and a refusal names the holder.

Exit codes:
  0  success
  1  a check failed: a device does not answer or answers with an exception, a point is not
     good, a write does not read back, the broker does not acknowledge
  2  bad usage or a bad config file (file:line, key path and a hint on stderr), a file that
     cannot be read (missing, unreadable, neither UTF-8 nor GB18030: one line naming it), an
     option value out of its range; a write without --yes when there is no terminal to ask
  3  the daemon does not answer (minewatch status)
  4  the serial port is held by another process (the message names it)
"""

from gateway.cli.common import EXIT_BUSY, EXIT_CONFIG, EXIT_DAEMON, EXIT_FAILED, EXIT_OK
from gateway.cli.entry import build_parser, main

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILED", "EXIT_CONFIG", "EXIT_DAEMON",
           "EXIT_BUSY"]
