"""Northbound: the MQTT uplink to the city platform."""
