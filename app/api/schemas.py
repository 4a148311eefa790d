"""Request and response models shared by the routes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A request body: unknown fields are an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid")
