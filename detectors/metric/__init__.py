"""Metric-series detectors: latency spikes, the default ensemble, counts, error ratios, tails and seasonality."""
