from .executor import Executor

__all__ = ["Executor"]
