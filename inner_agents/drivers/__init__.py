"""Drivers: one per data source, shared by every agent. `on_policy` acts and learns in JAX
environments inside one jitted `lax.scan`; `host` loops in Python over host-side
environments (ale-py, Gymnasium) around the agent's jitted `act` and `learn`."""
