"""Launchers: backends that run a `lpg.program.Program` (local in-process; Ray later)."""
