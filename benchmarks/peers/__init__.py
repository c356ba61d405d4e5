"""Side-by-side comparison of MineWatch with peer gateways on one simulated site (issue #9).

`python -m benchmarks.peers` runs it; `setup.sh` installs the peers, `measure.py` watches
processes and the broker, `systems.py` starts each system with a generated config, and
`report.py` writes the table, JSON and plots.
"""
