"""Entry point of `python -m benchmarks.peers`."""

from benchmarks.peers.report import main

raise SystemExit(main())
