"""Playbook authors' tools: explain (playbooks test), the JSON schema and the generated reference."""
