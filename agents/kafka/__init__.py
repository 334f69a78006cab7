"""Kafka plumbing: the one Faust/aiokafka seam, the embedded broker, topics and detector checkpoints."""
