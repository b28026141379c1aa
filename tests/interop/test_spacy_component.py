"""The spaCy component: extension attributes on sentence spans, batching, factory and entry point."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Span

from pipeline.spacy_component import ASSIGNS, EXTENSIONS, EpistanceComponent
from tests.fakes import CallSizeTagger, HashTagger

REPO = Path(__file__).resolve().parents[2]
TEXTS = ["When I was first admitted I didn't sleep for a week. The trials show peer support works.",
         "Mm-hm. Right.", "", "I was so proud of her when she got the flat."]


def blank_with_sentences() -> spacy.language.Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def test_sentences_get_labels_and_probabilities() -> None:
    nlp = blank_with_sentences()
    tagger = HashTagger()
    component = EpistanceComponent(nlp, tagger=tagger)
    doc = component(nlp(TEXTS[0]))
    sentences = list(doc.sents)
    assert len(sentences) == 2
    expected = tagger.predict([s.text for s in sentences])
    for sent, prediction in zip(sentences, expected):
        assert sent._.stance == prediction.stance and sent._.stance_probs == prediction.stance_probs
        assert sent._.emotions == prediction.emotions and sent._.emotion_probs == prediction.emotion_probs
        assert sent._.affect_focus == prediction.affect_focus
        assert sent._.affect_focus_prob == prediction.affect_focus_prob
    assert all(Span.has_extension(name) for name in EXTENSIONS)


def with_sentences(nlp: spacy.language.Language, parts: list[str]) -> spacy.tokens.Doc:
    """A doc whose sentences are exactly `parts` (the sentencizer would split "[laughs]")."""
    doc = nlp.make_doc(" ".join(parts))
    starts = {sum(len(p) + 1 for p in parts[:i]) for i in range(len(parts))}
    for token in doc:
        token.is_sent_start = token.idx in starts
    return doc


def test_pipe_tags_a_batch_of_docs_in_one_call_and_hides_markup() -> None:
    nlp = blank_with_sentences()
    tagger = HashTagger()
    component = EpistanceComponent(nlp, tagger=tagger, batch_size=64)
    inputs = [nlp(TEXTS[0]), with_sentences(nlp, ["Mm-hm.", "[laughs]"]), nlp(TEXTS[2]), nlp(TEXTS[3])]
    docs = list(component.pipe(iter(inputs), batch_size=8))
    assert tagger.calls == 1  # four docs, one predict
    assert tagger.sentences_seen == 4  # markup-only "[laughs]" and the empty doc are not sent
    assert [len(list(d.sents)) if len(d) else 0 for d in docs] == [2, 2, 0, 1]
    first, markup = list(docs[1].sents)
    assert markup.text == "[laughs]" and markup._.stance is None
    assert first._.stance is not None


def test_pipe_gives_a_doc_what_it_gets_alone_when_the_numbers_depend_on_the_batch() -> None:
    nlp = blank_with_sentences()
    tagger = CallSizeTagger()  # like float32 or int8: its numbers depend on the call's size
    component = EpistanceComponent(nlp, tagger=tagger)
    piped = list(component.pipe(iter([nlp(TEXTS[0]), nlp(TEXTS[1]), nlp(TEXTS[3])]), batch_size=8))
    assert tagger.call_sizes == [2, 2, 1]  # one call per doc
    alone = component(nlp(TEXTS[0]))
    assert [s._.affect_focus_prob for s in piped[0].sents] == [s._.affect_focus_prob for s in alone.sents]


def test_docs_without_sentence_boundaries_are_refused() -> None:
    nlp = spacy.blank("en")
    component = EpistanceComponent(nlp, tagger=HashTagger())
    with pytest.raises(ValueError, match="sentencizer"):
        component(nlp("No sentence boundaries here. Two sentences."))


def test_factory_loads_the_model_through_the_registry(tiny_model: Path) -> None:
    nlp = blank_with_sentences()
    nlp.add_pipe("epistance", config={"model": str(tiny_model), "batch_size": 4})
    meta = nlp.get_pipe_meta("epistance")
    assert sorted(meta.assigns) == sorted(ASSIGNS) and "token.is_sent_start" in meta.requires
    docs = list(nlp.pipe(TEXTS, batch_size=2))
    sentence = next(docs[0].sents)
    assert sentence._.stance in {"objective", "experiential", "none"}
    assert sum(sentence._.stance_probs.values()) == pytest.approx(1.0, abs=1e-3)
    assert set(sentence._.emotion_probs) == {"anger", "disgust", "fear", "joy", "sadness", "surprise"}
    assert isinstance(sentence._.affect_focus, bool) and 0 <= sentence._.affect_focus_prob <= 1
    assert nlp.get_pipe("epistance").model_ref == "tiny-tagger@0.0.1"
    # the same sentences through the tagger directly give the same labels
    from models.registry import load_tagger

    direct = load_tagger(str(tiny_model)).predict([s.text for s in docs[0].sents])
    assert [s._.stance for s in docs[0].sents] == [p.stance for p in direct]
    with pytest.raises(Exception, match="not found"):
        blank_with_sentences().add_pipe("epistance", config={"model": "nope@1.0", "registry_dir": str(REPO)})


def test_entry_point_lets_spacy_find_the_factory_in_a_fresh_interpreter(tiny_model: Path) -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["spacy_factories"]["epistance"] == \
        "pipeline.spacy_component:make_epistance_component"
    from importlib.metadata import entry_points

    if not any(e.name == "epistance" for e in entry_points(group="spacy_factories")):
        pytest.skip("the installed metadata predates the entry point: run `pip install -e .`")
    code = ("import sys, spacy\n"
            "nlp = spacy.blank('en'); nlp.add_pipe('sentencizer')\n"
            f"nlp.add_pipe('epistance', config={{'model': {str(tiny_model)!r}}})\n"
            "print(nlp.pipe_names, 'models.tagger' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd="/",
                            check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "['sentencizer', 'epistance'] False"  # found, and no weights loaded yet
