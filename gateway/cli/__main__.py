"""`python -m gateway.cli`: the same as the `minewatch` command."""

import sys

from gateway.cli.entry import main

if __name__ == "__main__":
    sys.exit(main())
