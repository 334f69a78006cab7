"""The host's pip configuration, for pip inside an image build (scripts/test-image).

``python -m scripts.image_pip_config OUT_DIR`` reads the configuration pip uses on this
machine (``pip config list``: /etc/pip.conf, the user's pip.conf, ``PIP_*`` variables),
writes it as ``OUT_DIR/pip.conf`` and prints, one a line, the ``SOURCE:TARGET:ro``
volumes the build mounts so that pip inside finds the same index, the local paths
that configuration names (find-links, file:// indexes, constraints) and the host's CA
bundle. Nothing is hard-coded: the image's pip sees what the host's pip sees.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

# Where pip on the host finds its CA bundle when no `cert` is configured, in this order.
CA_BUNDLE_SOURCES = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
DEFAULT_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
INDEX_KEYS = ("index-url", "extra-index-url")


def parse_config_list(lines: Iterable[str]) -> dict[str, dict[str, str]]:
    """``pip config list`` lines as {section: {key: value}}; ``:env:`` goes to global.

    Environment variables come last in pip's listing and win, as they do in pip.

    >>> parse_config_list(["global.cert='/ca.crt'", ":env:.cert='/other.crt'", "install.user='0'"])
    {'global': {'cert': '/other.crt'}, 'install': {'user': '0'}}
    """
    config: dict[str, dict[str, str]] = {}
    for line in lines:
        name, sep, quoted = line.strip().partition("=")
        if not sep:
            continue
        section, _, key = name.rpartition(".")
        section = "global" if section == ":env:" else section
        config.setdefault(section, {})[key] = str(ast.literal_eval(quoted))
    return config


def local_paths(config: dict[str, dict[str, str]]) -> list[Path]:
    """The existing local files and directories the configuration names (sorted).

    A local index (``file:///srv/pypi/simple``) counts with its parent: its pages link
    to the distributions relatively, e.g. ``../../files/x.whl``.

    >>> local_paths({"global": {"extra-index-url": "file:///nowhere/simple", "timeout": "9"}})
    []
    """
    found: set[Path] = set()
    for values in config.values():
        for key, value in values.items():
            for word in value.split():
                path = Path(word.removeprefix("file://"))
                if key in INDEX_KEYS and word.startswith("file://"):
                    path = path.parent
                if path.is_absolute() and path.exists():
                    found.add(path)
    return sorted(found)


def host_ca_bundle(environ: dict[str, str]) -> Path | None:
    """The CA bundle pip on the host trusts when its configuration names none."""
    for name in CA_BUNDLE_SOURCES:
        if environ.get(name) and Path(environ[name]).is_file():
            return Path(environ[name])
    return DEFAULT_CA_BUNDLE if DEFAULT_CA_BUNDLE.is_file() else None


def render(config: dict[str, dict[str, str]]) -> str:
    """The configuration as a pip.conf file.

    >>> print(render({"global": {"cert": "/ca.crt", "find-links": "/wheels"}}), end="")
    [global]
    cert = /ca.crt
    find-links = /wheels
    """
    parts = []
    for section, values in config.items():
        parts.append(f"[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items()))
    return "\n".join(parts)


def image_pip_config(lines: Iterable[str], environ: dict[str, str]) -> tuple[str, list[Path]]:
    """The pip.conf for the build and the local paths to mount for it."""
    config = parse_config_list(lines)
    settings = config.setdefault("global", {})
    if "cert" not in settings:
        bundle = host_ca_bundle(environ)
        if bundle is not None:
            settings["cert"] = str(bundle)
    return render(config), local_paths(config)


def main(argv: Sequence[str]) -> int:
    """Write OUT_DIR/pip.conf and print the volumes to mount."""
    if len(argv) != 1:
        print("usage: python -m scripts.image_pip_config OUT_DIR", file=sys.stderr)
        return 2
    listing = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    text, paths = image_pip_config(listing, dict(os.environ))
    out = Path(argv[0]) / "pip.conf"
    out.write_text(text, encoding="utf-8")
    print(f"{out}:/etc/pip.conf:ro")
    for path in paths:
        print(f"{path}:{path}:ro")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
