"""The accuracy report: how far an int8 model is from its float model (metrics, comparison,
text and JSON renderings)."""
from .compare import Report, compare, compare_folder, match_labels, read_labels
from .render import render, summarize

__all__ = ["Report", "compare", "compare_folder", "match_labels", "read_labels", "render",
           "summarize"]
