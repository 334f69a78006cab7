"""The prediction-log monitor: every detector of a model, label joins and the records it reads and writes."""
