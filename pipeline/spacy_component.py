"""The epistance tagger as a spaCy pipeline component.

    import spacy
    nlp = spacy.load("en_core_web_sm")          # any English pipeline that sets sentences
    nlp.add_pipe("epistance", config={"model": "epistance-tagger@latest"})
    for sent in nlp("I was terrified. The trials show it works.").sents:
        print(sent._.stance, sent._.stance_probs, sent._.emotions, sent._.affect_focus)

Every sentence span gets six extension attributes (registered on `Span`, declared in the
component's `assigns`): `stance` (str), `stance_probs` (dict), `emotions` (list of str),
`emotion_probs` (dict), `affect_focus` (bool) and `affect_focus_prob` (float). Read them
from `doc.sents`. Transcriber markup ([laughs], <UNSURE>) is hidden from the model as in
`epistance annotate`; a model trained with context reads the doc's text before each
sentence as its context (a doc has no turns).

Config: `model` (`id@version`, `id@latest`, a model folder, or null for the default
model), `registry_dir` (null = the package registry) and `batch_size`. The reference is
resolved when the component is added (an unknown model fails at once); the weights are
loaded by `models.registry.load_tagger` on first use, once per process, with the same
verification as the CLI. `nlp.pipe` tags the sentences of a whole batch of docs together
where the model's numbers do not depend on the batch (bfloat16), and each doc on its own
otherwise (float32, the component's default, and int8), so a doc gets the same
probabilities from `nlp(doc)` as from `nlp.pipe`.

The factory is registered when this module is imported, and through the
`spacy_factories` entry point in pyproject.toml, so `add_pipe("epistance")` works in a
fresh interpreter without importing anything first. Neither loads a model.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import minibatch

from pipeline.tag import Tagger, batch_invariant, tag_texts

FACTORY = "epistance"
EXTENSIONS = ("stance", "stance_probs", "emotions", "emotion_probs", "affect_focus", "affect_focus_prob")
ASSIGNS = [f"span._.{name}" for name in EXTENSIONS]


def register_extensions() -> None:
    """Register the Span extension attributes (once; an existing one is left alone)."""
    for name in EXTENSIONS:
        if not Span.has_extension(name):
            Span.set_extension(name, default=None)


class EpistanceComponent:
    """Sets stance, emotions and affect focus, with probabilities, on each sentence span."""

    def __init__(self, nlp: Language, name: str = FACTORY, model: str | None = None,
                 registry_dir: str | None = None, batch_size: int = 64, tagger: Tagger | None = None) -> None:
        self.name = name
        self.model = model
        self.registry_dir = Path(registry_dir) if registry_dir else None
        self.batch_size = batch_size
        self._tagger = tagger
        register_extensions()
        if tagger is None:
            from models.registry import resolve_ref

            self.model_ref, _ = resolve_ref(model, self.registry_dir)  # fails now if the model is unknown
        else:
            self.model_ref = tagger.model_ref

    @property
    def tagger(self) -> Tagger:
        if self._tagger is None:
            from models.registry import load_tagger

            self._tagger = load_tagger(self.model, self.registry_dir, batch_size=self.batch_size)
        return self._tagger

    def __call__(self, doc: Doc) -> Doc:
        self._tag([doc])
        return doc

    def pipe(self, stream: Iterable[Doc], batch_size: int = 128) -> Iterator[Doc]:
        for docs in minibatch(stream, size=batch_size):
            if batch_invariant(self.tagger):
                self._tag(docs)
            else:  # float32, int8: a doc's numbers would depend on the docs batched with it
                for doc in docs:
                    self._tag([doc])
            yield from docs

    def _tag(self, docs: list[Doc]) -> None:
        from pipeline.context import preceding_context
        from pipeline.ingest.markup import strip_markup

        spans: list[Span] = []
        for doc in docs:
            if len(doc) and not doc.has_annotation("SENT_START"):
                raise ValueError(
                    f"[{self.name}] the doc has no sentence boundaries: add a component that sets them before "
                    f"'{self.name}' (a parser, 'senter' or nlp.add_pipe('sentencizer', before='{self.name}'))")
            spans.extend(doc.sents if len(doc) else [])
        pairs = [(span, strip_markup(span.text)) for span in spans]
        pairs = [(span, text) for span, text in pairs if text]  # markup or whitespace only: nothing to read
        if not pairs:
            return
        # the doc's text before each sentence is its context (a doc has no turns to go by)
        contexts = [preceding_context(None, span.doc.text, span.start_char) for span, _ in pairs]
        predictions = tag_texts(self.tagger, (text for _, text in pairs), self.batch_size, contexts)
        for (span, _), prediction in zip(pairs, predictions):
            span._.stance = prediction.stance
            span._.stance_probs = dict(prediction.stance_probs)
            span._.emotions = list(prediction.emotions)
            span._.emotion_probs = dict(prediction.emotion_probs)
            span._.affect_focus = prediction.affect_focus
            span._.affect_focus_prob = prediction.affect_focus_prob


@Language.factory(
    FACTORY,
    default_config={"model": None, "registry_dir": None, "batch_size": 64},
    assigns=ASSIGNS,
    requires=["token.is_sent_start"],
)
def make_epistance_component(nlp: Language, name: str, model: str | None, registry_dir: str | None,
                             batch_size: int) -> EpistanceComponent:
    """The `epistance` factory (see the module docstring)."""
    return EpistanceComponent(nlp, name, model=model, registry_dir=registry_dir, batch_size=batch_size)

