"""The accuracy report: how far an int8 model is from its float model (metrics, comparison,
text, JSON and HTML renderings)."""
from .compare import (Report, compare, compare_folder, match_labels, read_class_names,
                      read_labels)
from .details import Details, compare_with_details
from .html import render_html
from .render import render, summarize

__all__ = ["Details", "Report", "compare", "compare_folder", "compare_with_details",
           "match_labels", "read_class_names", "read_labels", "render", "render_html",
           "summarize"]
