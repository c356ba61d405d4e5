"""The local history store: what the site did, kept on the site computer for the monthly report.

Embedded SQLite (`history.sqlite` in the state directory), on by default: the 5-minute statistics
of every point (`store.py`), each device's online time and the gateway's own running time
(`recorder.py`), manual readings (`readings.py`); the alert and fault log, acknowledgements
included, stay in the outbox's permanent alert log and are read from there, never copied. It keeps
at least 13 whole months within a bounded size (`sizing.py`), and like every writer of state it
degrades on a full or read-only disk instead of stopping the gateway (`gateway/state_dir.py`).
"""
