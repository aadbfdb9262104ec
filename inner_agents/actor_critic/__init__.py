"""The actor-critic agent (the LPG paper's inner agent; A2C is its native rule)."""
