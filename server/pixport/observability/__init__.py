"""Metrics and structured logs shared by every pixport process."""
