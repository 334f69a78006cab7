"""``fireline backtest``: recorded traffic through the worker's detectors, incidents and playbooks, dry."""
