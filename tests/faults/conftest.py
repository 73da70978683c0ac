"""The fault-injection suite. Tests add rows to the reliability table (docs/reliability.md) with the
``fault_log`` fixture from tests/conftest.py; ``python tests/faults/report.py`` runs them and rewrites the table.
"""
