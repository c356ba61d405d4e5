"""Modbus acquisition: read planning and vectorised decoding."""
