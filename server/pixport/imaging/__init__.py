"""Pixel work: sniff, limits, one decode, metadata, fingerprints and renditions, run in a process pool."""

from __future__ import annotations

from pixport.imaging.analyse import analyse
from pixport.imaging.pool import PixelPool
from pixport.imaging.sniff import sniff
from pixport.imaging.types import Analysis, Color, ImageRejected, Limits, Rendition

__all__ = ["Analysis", "Color", "ImageRejected", "Limits", "PixelPool", "Rendition", "analyse", "sniff"]
