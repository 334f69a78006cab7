"""Recorded input events for replay and backtest: JSON-lines and CSV files, topic time ranges, checked by the worker's contracts."""
