"""The raw-series store: line protocol, a bounded local spool and the InfluxDB v2 writer."""
