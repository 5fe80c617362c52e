"""Crash isolation and coverage-guided fuzzing: findings survive the crash that makes them.

The seed driver runs each seed in a child process; the atheris campaign runs
in a child of its own. Both run bounded here; ``tox -e fuzz`` runs them long.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests import campaigns
from tests.conftest import ROOT, require_emulation
from tests.fuzz import driver

require_emulation()

LONG = os.environ.get("COMPATHEAP_FUZZ") == "long"
SEEDS, STEPS = (range(0, 400), 1000) if LONG else (range(0, 24), 300)
ATHERIS_SECONDS = 600 if LONG else 15
CORPUS = ROOT / "tests" / "fuzz" / "corpus"

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the driver forks a child per seed")


@pytest.mark.parametrize("variant", ["plain", "debug", "fallback"])
def test_seeds_in_child_processes(variant: str) -> None:
    """Random call sequences, each seed in its own child: no child dies, none diverges."""
    result = driver.campaign(SEEDS, STEPS, variant)
    campaigns.record(
        "isolation",
        seeds=result.seeds,
        steps=result.steps,
        bad_inputs=result.bad_inputs,
        findings=len(result.findings),
    )
    assert [f.report() for f in result.findings] == []
    assert result.steps > len(SEEDS) * STEPS // 2


def test_a_segfault_is_a_finding_with_a_minimal_reproducer(tmp_path: Path) -> None:
    """A child killed by SIGSEGV is reported with its seed, and cut down to the ops that matter."""
    result = driver.campaign([3], 200, "plain", plant="crash-if-blocks", out=tmp_path)
    assert len(result.findings) == 1
    finding = result.findings[0]
    assert finding.seed == 3 and finding.outcome == "killed by SIGSEGV"
    # The planted crash needs a live block: a heap, an allocation on it, the crash.
    kinds = [op[0] for op in finding.reproducer]
    assert kinds[-1] == "crash-if-blocks" and "alloc" in kinds and len(kinds) <= 4
    assert finding.confirmed, "the reproducer does not crash a fresh interpreter"
    assert finding.path is not None and finding.path.exists()
    assert "SIGSEGV" in finding.report() and "replay" in finding.report()


def test_a_divergence_is_a_finding() -> None:
    result = driver.campaign([5], 100, "debug", plant="diverge")
    assert [f.outcome for f in result.findings] == ["divergence from the model"]
    assert result.findings[0].reproducer == [("diverge",)]
    assert "planted divergence" in result.findings[0].stderr


def test_atheris_campaign() -> None:
    """Coverage-guided fuzzing of argument and pointer handling, from the corpus in tests/fuzz/corpus."""
    if importlib.util.find_spec("atheris") is None:
        pytest.skip(
            f"atheris is not installed for this Python ({sys.version.split()[0]}): "
            "no wheel for it here; install the 'fuzz' extra where one exists"
        )
    assert len(list(CORPUS.iterdir())) >= 4
    with tempfile.TemporaryDirectory() as new_corpus, tempfile.TemporaryDirectory() as artifacts:
        proc = subprocess.run(
            [
                sys.executable,
                str(ROOT / "tests" / "fuzz" / "atheris_target.py"),
                f"-max_total_time={ATHERIS_SECONDS}",
                "-timeout=30",
                f"-artifact_prefix={artifacts}/",
                new_corpus,
                str(CORPUS),
            ],
            capture_output=True,
            text=True,
            timeout=ATHERIS_SECONDS * 4 + 120,
            cwd=ROOT,
        )
        crashes = [p.name for p in Path(artifacts).iterdir()]
    output = proc.stderr
    runs = re.search(r"Done (\d+) runs", output)
    coverage = re.findall(r"cov: (\d+)", output)
    campaigns.record(
        "atheris",
        runs=int(runs.group(1)) if runs else 0,
        coverage=int(coverage[-1]) if coverage else 0,
        crashes=len(crashes),
    )
    assert proc.returncode == 0 and not crashes, output[-4000:]
    assert runs and int(runs.group(1)) > 100
