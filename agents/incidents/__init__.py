"""The incident manager: detections in, deduplicated incidents with a lifecycle out; its view, silences and API."""
