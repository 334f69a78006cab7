"""retrain with provider command: a real local process."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fireline.errors import ActionError
from playbooks.actions import default_registry
from playbooks.context import ActionContext
from playbooks.registry import ActionResult
from tests.factories import make_incident


async def retrain(**params: Any) -> ActionResult:
    registered = default_registry().get("retrain")
    validated = registered.params_model.model_validate({"provider": "command", **params})
    return await registered.run(make_incident(), validated, ActionContext())


async def test_retrain_command__gets_the_incident_on_stdin(tmp_path):
    script = "import json,sys; i=json.load(sys.stdin); print('retraining', i['model'], i['id'])"
    result = await retrain(argv=[sys.executable, "-c", script], timeout_s=20)
    assert result.ok, result.detail
    assert result.target == sys.executable
    assert result.detail.endswith("exited 0 (stdout: retraining fraud inc-0123456789abcdef)")


async def test_retrain_command__non_zero_exit_fails_with_the_output_tails(tmp_path):
    script = "import sys; print('x' * 1000); sys.stderr.write('no GPU left'); sys.exit(3)"
    result = await retrain(argv=[sys.executable, "-c", script], timeout_s=20)
    assert not result.ok
    assert f"{sys.executable} exited with 3 (stdout: …xxx" in result.detail
    assert result.detail.endswith("; stderr: no GPU left)")
    assert len(result.detail) < 1000


async def test_retrain_command__timeout_kills_the_process_group(tmp_path):
    marker, pid_file = tmp_path / "survived", tmp_path / "grandchild.pid"
    # The child starts a grandchild that would write the marker if it outlived the kill.
    grandchild = tmp_path / "grandchild.py"
    grandchild.write_text(
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
        f"time.sleep(1.5); open({str(marker)!r}, 'w')"
    )
    script = (
        f"import subprocess, sys, time; subprocess.Popen([sys.executable, {str(grandchild)!r}]); "
        f"import pathlib; p = pathlib.Path({str(pid_file)!r})\n"
        "while not p.exists(): time.sleep(0.01)\n"
        "print('started', flush=True); time.sleep(30)"
    )
    result = await retrain(argv=[sys.executable, "-c", script], timeout_s=1)
    assert not result.ok
    assert result.detail == f"{sys.executable} killed after 1s (stdout: started)"
    # Gone (or a zombie): had it survived, it would end only after writing the marker.
    pid = int(pid_file.read_text())
    await wait_until(lambda: not running(pid), 10, f"the grandchild {pid} to be gone")
    assert not marker.exists()


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s}s waiting for {what}"
        await asyncio.sleep(0.05)


async def test_retrain_command__env_and_cwd_are_applied(tmp_path):
    script = "import os; print(os.getcwd(), os.environ['RETRAIN_MODE'])"
    result = await retrain(
        argv=[sys.executable, "-c", script], cwd=str(tmp_path), env={"RETRAIN_MODE": "full"}
    )
    assert result.ok
    assert result.detail.endswith(f"(stdout: {tmp_path} full)")


async def test_retrain_command__missing_program_is_an_action_error():
    with pytest.raises(ActionError, match=r"command '/nonexistent/train' cannot be started"):
        await retrain(argv=["/nonexistent/train"])
