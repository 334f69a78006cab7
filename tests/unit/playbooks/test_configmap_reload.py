"""Hot reload from a Kubernetes ConfigMap volume (deploy/k8s mounts the playbooks so).

kubelet lays a ConfigMap out as one symlink per key pointing into ``..data/``, and
``..data`` itself a symlink to a hidden, timestamped directory holding the files. An
update writes a new timestamped directory, points ``..data_tmp`` at it, renames
``..data_tmp`` over ``..data`` (one atomic step) and deletes the old directory. The
per-key symlinks never change, so a reload must look through them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from playbooks.actions import default_registry
from playbooks.engine import PlaybookEngine, Reload
from playbooks.registry import ActionContext

PLAYBOOK = """\
name: latency-spike-alert
match:
  kinds: [latency_spike]
steps:
  - slack: {{channel: "{channel}"}}
"""


def write_version(mount: Path, version: str, channel: str) -> Path:
    """A timestamped payload directory, as kubelet's atomic writer makes it."""
    payload = mount / f"..2026_01_01_00_00_0{version}.000000001"
    payload.mkdir()
    (payload / "latency-spike.yaml").write_text(PLAYBOOK.format(channel=channel))
    return payload


def point_data_at(mount: Path, payload: Path) -> None:
    """Swap ``..data`` to ``payload`` the way kubelet does: a new link renamed over it."""
    (mount / "..data_tmp").symlink_to(payload.name)
    os.replace(mount / "..data_tmp", mount / "..data")


def channels(engine: PlaybookEngine) -> list[str]:
    return [step.params.model_dump()["channel"] for p in engine.playbooks for step in p.steps]


def test_reload__follows_kubelets_atomic_symlink_swap_of_a_configmap_volume(tmp_path):
    mount = tmp_path / "playbooks"
    mount.mkdir()
    first = write_version(mount, "1", "#oncall")
    point_data_at(mount, first)
    (mount / "latency-spike.yaml").symlink_to("..data/latency-spike.yaml")
    engine = PlaybookEngine(default_registry(), ActionContext())
    engine.load(mount)
    assert [p.name for p in engine.playbooks] == ["latency-spike-alert"]  # hidden dirs skipped
    assert channels(engine) == ["#oncall"]
    assert engine.reload_if_changed(mount) is Reload.UNCHANGED

    second = write_version(mount, "2", "#ml-platform-oncall")
    point_data_at(mount, second)
    shutil.rmtree(first)

    assert engine.reload_if_changed(mount) is Reload.LOADED
    assert channels(engine) == ["#ml-platform-oncall"]
    assert engine.reload_if_changed(mount) is Reload.UNCHANGED
