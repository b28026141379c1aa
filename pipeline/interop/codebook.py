"""The codebook as the interop formats present it: one entry per (layer, label) with a
display name, a short definition (data/annotation/CODEBOOK.md) and a colour.

Labels come from the label schema (configs/labels/v1.toml); the definitions here are the
one-line summaries shown as hints in Label Studio and as code descriptions in REFI-QDA
projects. A label without a summary still gets a code, described by its name.
"""
from __future__ import annotations

from dataclasses import dataclass

from models.labels import AFFECT_FOCUS, EMOTIONS, STANCE, LabelSchema

LAYER_TITLES = {STANCE: "Stance", EMOTIONS: "Emotions", AFFECT_FOCUS: "Affect focus"}
LAYER_DESCRIPTIONS = {
    STANCE: "what kind of knowledge does the sentence draw on? (exactly one)",
    EMOTIONS: "which emotions does the speaker express? (neutral = none)",
    AFFECT_FOCUS: "is the sentence about feelings or the work of attending to them?",
}
DEFINITIONS = {
    (STANCE, "objective"): "Impersonal, general, checkable knowledge grounded in expertise, evidence or institutions.",
    (STANCE, "experiential"): "Knowledge grounded in lived, felt or personally witnessed experience.",
    (STANCE, "none"): "No knowledge claim: backchannels, questions, interview management, pure evaluations.",
    (EMOTIONS, "anger"): "Annoyance, frustration, irritation, indignation, disapproval with heat.",
    (EMOTIONS, "disgust"): "Revulsion, contempt, moral distaste.",
    (EMOTIONS, "fear"): "Worry, nervousness, anxiety, dread, being scared.",
    (EMOTIONS, "joy"): "Happiness, pride, relief, gratitude, amusement, love, optimism, admiration.",
    (EMOTIONS, "sadness"): "Grief, disappointment, hurt, loneliness, remorse, hopelessness.",
    (EMOTIONS, "surprise"): "Astonishment, realisation, confusion, curiosity expressed as surprise.",
    (AFFECT_FOCUS, "yes"): "The sentence talks about emotions, emotional states or emotional work.",
}
COLOURS = {
    (STANCE, "objective"): "#2B6CB0",
    (STANCE, "experiential"): "#DD6B20",
    (STANCE, "none"): "#A0AEC0",
    (EMOTIONS, "anger"): "#C53030",
    (EMOTIONS, "disgust"): "#6B8E23",
    (EMOTIONS, "fear"): "#6B46C1",
    (EMOTIONS, "joy"): "#D69E2E",
    (EMOTIONS, "sadness"): "#2C7A7B",
    (EMOTIONS, "surprise"): "#D53F8C",
    (AFFECT_FOCUS, "yes"): "#2F855A",
}
FALLBACK_COLOURS = ("#4A5568", "#718096", "#975A16", "#285E61", "#553C9A", "#9B2C2C")
#: the Label Studio / CSV value meaning "no emotion" (an empty set in the gold format)
NEUTRAL = "neutral"
YES, NO = "yes", "no"


@dataclass(frozen=True)
class Code:
    layer: str
    label: str
    name: str  # as shown in a QDA tool: unique across the codebook
    description: str
    colour: str


def code_name(layer: str, label: str) -> str:
    if layer == AFFECT_FOCUS:
        return f"affect focus: {label}"
    return f"{'emotion' if layer == EMOTIONS else layer}: {label}"


def codes(schema: LabelSchema) -> list[Code]:
    """Every codable (layer, label) of the schema, layer by layer in schema order."""
    out: list[Code] = []
    fallback = iter(FALLBACK_COLOURS * 10)
    for layer in (STANCE, EMOTIONS, AFFECT_FOCUS):
        for label in schema.layers[layer].labels:
            out.append(Code(layer=layer, label=label, name=code_name(layer, label),
                            description=DEFINITIONS.get((layer, label), f"{layer} = {label}"),
                            colour=COLOURS.get((layer, label)) or next(fallback)))
    return out


def colour_of(layer: str, label: str) -> str:
    return COLOURS.get((layer, label), FALLBACK_COLOURS[0])
