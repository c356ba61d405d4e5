"""Modbus: the one client of the gateway (`client`: make a client, read or write a table, shared
by the poller and the device commands), the strict reply checks (`replies`), read planning
(`planner`: the fewest requests per device within its limits), vectorised decoding (`decode`:
replies -> engineering values with numpy) and its inverse for commissioning writes (`encode`)."""
