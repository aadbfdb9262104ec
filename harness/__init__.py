"""The meta-test harness: train fresh agents with frozen rules and report what they reach.

Rule- and agent-agnostic: `evaluation` trains any registered agent with any rule through
the driver for the environment's data source; `result_store` keeps finished results so
runs resume; `reporting` writes CSVs, tables and plots; `runner` is the meta-test run
(`meta_test.py`, `lpg.report`). `checkpoint` (atomic, pickle-free files) and `cli` (one-line
command-line errors) serve every layer above.
"""
