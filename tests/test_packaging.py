"""What is tested is what users install, and the distribution says what it is."""

from __future__ import annotations

import os
import re
from importlib import metadata
from pathlib import Path

import pytest

import _compatheap_pytestplugin
import compatheap

from .conftest import ROOT


@pytest.mark.skipif(not os.environ.get("COMPATHEAP_TEST_WHEEL"), reason="only where tox installed the wheel")
def test_the_installed_wheel_is_under_test() -> None:
    for module in (compatheap, _compatheap_pytestplugin):
        location = Path(module.__file__ or "").resolve()
        assert ROOT not in location.parents or ".tox" in location.parts, f"{module.__name__} from {location}"


def _installed() -> metadata.Distribution:
    try:
        return metadata.distribution("compatheap")
    except metadata.PackageNotFoundError:
        pytest.skip("compatheap is not installed here (tox installs it)")


def test_core_install_needs_platformdirs_only() -> None:
    requires = _installed().requires or []
    core = [r for r in requires if "extra ==" not in r]
    names = sorted(re.split(r"[\s<>=!;\[]", r, maxsplit=1)[0].lower() for r in core)
    assert names == ["platformdirs", "tomli"]
    conformance = [r for r in requires if re.search(r"extra\s*==\s*['\"]conformance['\"]", r)]
    assert {re.split(r"[\s<>=!;]", r, maxsplit=1)[0].lower() for r in conformance} == {"pytest", "hypothesis"}


def test_metadata_declares_license_version_and_plugin() -> None:
    dist = _installed()
    assert dist.version == compatheap.__version__
    assert dist.metadata["License-Expression"] == "MIT"
    plugins = [ep for ep in dist.entry_points if ep.group == "pytest11"]
    assert [ep.value for ep in plugins] == ["_compatheap_pytestplugin"]


def test_changelog_has_a_section_for_this_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in text
    assert re.search(rf"^## \[{re.escape(compatheap.__version__)}\] - \d{{4}}-\d\d-\d\d$", text, re.MULTILINE)
