"""The shipped default model (slow: loads the real base encoder). Run with `-m slow`."""
from __future__ import annotations

import pytest

from models.registry import DEFAULT_MODEL_ID, clear_cache, list_versions, load_tagger
from pipeline.tag import Tagger

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    if not list_versions(DEFAULT_MODEL_ID):
        pytest.skip("no default model in models/registry/")
    clear_cache()
    return load_tagger()


def test_default_model_loads_verified_and_labels_codebook_examples(tagger: Tagger) -> None:
    assert tagger.model_ref.startswith(f"{DEFAULT_MODEL_ID}@")
    preds = tagger.predict([
        "Lithium has a narrow therapeutic window.",
        "When I came off it I felt like I was underwater for months.",
        "Mm, yeah.",
        "What do you value most about working with peers?",
        "I was so proud of her when she got the flat.",
    ])
    assert [p.stance for p in preds] == ["objective", "experiential", "none", "none", "experiential"]
    assert preds[4].affect_focus and "joy" in preds[4].emotions
    assert preds[2].emotions == [] and not preds[0].affect_focus


@pytest.mark.xfail(strict=True, reason="known error of 1.1.0 and 1.2.0 (docs/model.md, 'What limits it'): the codebook marks "
                   "the 'underwater' metaphor as affect focus; the model reads it as none, with or without context")
def test_default_model_gives_the_codebook_metaphor_its_affect_focus(tagger: Tagger) -> None:
    # strict: when a model gets it right this xfail fails, and the note here goes
    assert tagger.predict(["When I came off it I felt like I was underwater for months."])[0].affect_focus


def test_latest_resolves_to_the_same_cached_model(tagger: Tagger) -> None:
    assert load_tagger("latest") is tagger
    assert load_tagger(tagger.model_ref) is tagger
