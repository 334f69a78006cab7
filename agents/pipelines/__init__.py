"""Validated micro-batches in, detections out: event contracts, ingestion and the detector pipelines (no Kafka)."""
