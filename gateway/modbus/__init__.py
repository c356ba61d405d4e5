"""Modbus acquisition: read planning (`planner`: the fewest requests per device within its
limits) and vectorised decoding (`decode`: replies -> engineering values with numpy)."""
