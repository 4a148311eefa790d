"""OGC API – Features under /ogc: one router factory over a registry of collections."""

from app.api.ogc.collections import COLLECTIONS
from app.api.ogc.factory import OgcFeatures

__all__ = ["COLLECTIONS", "OgcFeatures"]
