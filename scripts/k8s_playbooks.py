"""Rewrite deploy/k8s/playbooks.yaml from playbooks/library (no kubectl needed).

``.venv/bin/python scripts/k8s_playbooks.py``; tests/unit/deploy checks the file is current.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "playbooks" / "library"
TARGET = ROOT / "deploy" / "k8s" / "playbooks.yaml"

HEADER = """\
# The shipped playbooks (playbooks/library), mounted at FIRELINE_PLAYBOOKS_DIR. To run
# your own, change the ConfigMap in the cluster (kubectl edit, or an overlay): fireline
# reloads the directory without a restart and keeps the previous set if the new one
# does not validate. A test checks this file matches playbooks/library; to rewrite it:
#   .venv/bin/python scripts/k8s_playbooks.py
apiVersion: v1
kind: ConfigMap
metadata:
  name: fireline-playbooks
  labels:
    app.kubernetes.io/name: fireline
data:
"""


def render() -> str:
    """The ConfigMap: one key per playbook file, its text as a literal block."""
    parts = [HEADER]
    for path in sorted(LIBRARY.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        body = "".join(f"    {line}" if line.strip() else "\n" for line in text.splitlines(True))
        parts.append(f"  {path.name}: |\n{body}")
    return "".join(parts)


def main() -> int:
    """Write the ConfigMap next to the other manifests."""
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
