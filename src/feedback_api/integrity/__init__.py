"""Integrity: provenance, detectors, flags and their effect on the metrics (issue 7)."""
