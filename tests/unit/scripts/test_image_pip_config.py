"""scripts/image_pip_config: pip inside the image build sees the host's pip configuration."""

from __future__ import annotations

import doctest

from scripts import image_pip_config
from scripts.image_pip_config import image_pip_config as build_config
from scripts.image_pip_config import parse_config_list


def test_doctests():
    result = doctest.testmod(image_pip_config)
    assert result.attempted >= 3 and result.failed == 0


def test_environment_overrides_files_and_lands_in_global():
    listing = [
        "global.index-url='https://index.invalid/simple'",
        "global.timeout='15'",
        "install.no-compile='1'",
        ":env:.timeout='180'",
    ]
    assert parse_config_list(listing) == {
        "global": {"index-url": "https://index.invalid/simple", "timeout": "180"},
        "install": {"no-compile": "1"},
    }


def test_local_index_find_links_and_cert_are_mounted_and_named(tmp_path):
    repository = tmp_path / "pypi"
    (repository / "simple").mkdir(parents=True)
    (repository / "files").mkdir()
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    bundle = tmp_path / "ca.crt"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    listing = [
        f"global.extra-index-url='file://{repository}/simple https://index.invalid/simple'",
        f":env:.find-links='{wheels}'",
    ]
    text, paths = build_config(listing, {"SSL_CERT_FILE": str(bundle)})
    # The index's parent: its pages link to ../../files/*.whl.
    assert paths == sorted([repository, wheels, bundle])
    assert text == (
        "[global]\n"
        f"extra-index-url = file://{repository}/simple https://index.invalid/simple\n"
        f"find-links = {wheels}\n"
        f"cert = {bundle}\n"
    )


def test_a_configured_cert_is_kept(tmp_path):
    mine = tmp_path / "mine.crt"
    mine.write_text("x")
    other = tmp_path / "other.crt"
    other.write_text("y")
    text, paths = build_config([f"global.cert='{mine}'"], {"REQUESTS_CA_BUNDLE": str(other)})
    assert text == f"[global]\ncert = {mine}\n"
    assert paths == [mine]
