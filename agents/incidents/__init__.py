"""The incident manager: detections in, deduplicated incidents with a lifecycle out.

Also its view, silences and API, and the Alertmanager intake (Prometheus alerts as detections).
"""
