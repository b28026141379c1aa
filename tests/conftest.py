from __future__ import annotations

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# the int8 model cache (models/onnx_cache.py) of a test session is its own, never the user's;
# one folder however often this file is imported (pytest loads it, tests import it again)
if "EPISTANCE_TEST_CACHE" not in os.environ:
    os.environ["EPISTANCE_TEST_CACHE"] = tempfile.mkdtemp(prefix="epistance-test-cache-")
TEST_CACHE = os.environ["EPISTANCE_TEST_CACHE"]
os.environ["EPISTANCE_CACHE_DIR"] = TEST_CACHE

from pathlib import Path

import pytest

from pipeline.config import RunConfig
from pipeline.segment import Segmenter
from tests.fakes import HashTagger

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
PRIMOCK = SHARED_DATA / "primock57" / "transcripts"
SAMPLES = REPO / "data_samples"


@pytest.fixture(scope="session")
def segmenter() -> Segmenter:
    return Segmenter()


@pytest.fixture()
def tagger() -> HashTagger:
    return HashTagger()


@pytest.fixture()
def run_config() -> RunConfig:
    return RunConfig()


def primock_or_skip() -> Path:
    if not PRIMOCK.is_dir():
        pytest.skip("../shared/data/primock57 is not beside this checkout")
    return PRIMOCK


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import shutil

    shutil.rmtree(TEST_CACHE, ignore_errors=True)  # the real model's int8 entry alone is 59 MB
