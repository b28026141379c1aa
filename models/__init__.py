"""The epistance tagger: label schema, architecture, training, evaluation and registry."""
