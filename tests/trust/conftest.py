"""Fixtures of the trust tests (RELIABILITY sections C, D, E, F): a pseudonymiser with a
fixed test key, and helpers to run the real `epistance` command in a fresh process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.pseudonymise import Pseudonymiser, PseudonymKey

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
FACTORY = "tests.flows.helpers:hash_tagger_source"
# what a user's shell would not have: the tool must set these itself (RELIABILITY 28)
CALLER_VARIABLES = ("HF_", "TRANSFORMERS_", "PREFECT_", "DO_NOT_TRACK", "TOKENIZERS_", "HF_DATASETS_")


@pytest.fixture(scope="session")
def pseudonymiser() -> Pseudonymiser:
    return Pseudonymiser(PseudonymKey(b"epistance-test-key-not-secret-00"))


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: PYTHONPATH to the repo, no offline or Prefect variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(CALLER_VARIABLES)}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`python -m pipeline.cli ARGS` in a fresh process."""
    return subprocess.run([PYTHON, "-m", "pipeline.cli", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)
