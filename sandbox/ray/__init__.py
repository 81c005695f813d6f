"""A local Ray head and a tiny model built in code: what trainer=ray runs on in the tests and the demo."""

from sandbox.ray.head import RayHead
from sandbox.ray.tiny_model import build_tiny_model

__all__ = ["RayHead", "build_tiny_model"]
