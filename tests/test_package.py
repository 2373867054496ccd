"""The files an open-source package carries agree with the package: licence, citation, changelog, version."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from dvtr_bench import __version__

REPO = Path(__file__).resolve().parents[1]


def test_the_licence_file_is_the_one_setup_cfg_declares():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    assert cfg["metadata"]["license"] == "Apache-2.0"
    assert cfg["metadata"]["license_files"].strip() == "LICENSE"
    text = (REPO / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License") and "Version 2.0, January 2004" in text


def test_citation_and_changelog_name_this_version():
    cff = (REPO / "CITATION.cff").read_text()
    assert re.search(r"^cff-version: 1\.2\.0$", cff, re.M)
    assert re.search(rf"^version: {re.escape(__version__)}$", cff, re.M)
    changelog = (REPO / "CHANGELOG.md").read_text()
    first = re.search(r"^## (\S+)", changelog, re.M)
    assert first is not None and __version__.startswith(first.group(1)), \
        "the newest CHANGELOG entry must be this version"
