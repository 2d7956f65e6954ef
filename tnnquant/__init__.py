"""tnnquant: post-training int8 quantization for Tencent TNN models."""
from .api import dequantize, simulate
from .convert import convert_onnx
from .errors import TnnQuantError
from .formats.io import load_model, load_proto, save_model
from .ir.graph import BlobScale, Graph, InputSpec, Layer

__version__ = "0.1.0"

__all__ = ["BlobScale", "Graph", "InputSpec", "Layer", "TnnQuantError", "convert_onnx",
           "dequantize", "load_model", "load_proto", "save_model", "simulate"]
