"""Working with researchers' own tools: REFI-QDA export, annotation round trips (Label
Studio, CSV), active-learning selection, agreement, model diffs and a transcript viewer.

One module per job; each reads an annotated corpus folder (see pipeline.corpus_io) or an
annotation file and returns plain data. Importing this package does nothing.
"""
