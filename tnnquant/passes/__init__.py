"""Graph -> graph passes of the quantizer and of TNN's runtime."""
