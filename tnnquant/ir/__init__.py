from .graph import BlobScale, FileFormat, Graph, InputSpec, Layer

__all__ = ["BlobScale", "FileFormat", "Graph", "InputSpec", "Layer"]
