"""The interactive world loop: camera paths and actions in, memory-conditioned video out, written back."""

from agentmem.interactive.loop import MODES, CameraPath, LoopConfig, WorldLoop

__all__ = ["MODES", "CameraPath", "LoopConfig", "WorldLoop"]
