"""The category taxonomy for every key: the codes, labels and groups that layers are named by."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.api.deps import CurrentPrincipal, SessionDep
from app.db.reference import list_categories

router = APIRouter(prefix="/api/v1/categories", tags=["categories"])


class CategoryOut(BaseModel):
    """A category of the taxonomy as the database holds it (data/categories.yaml, loaded by
    `est db init`)."""

    code: str = Field(examples=["skadegorelse.klotter"])
    parent_code: str | None = Field(description="the category one level up; null at the top")
    label_sv: str = Field(examples=["Klotter"])
    label_en: str = Field(examples=["Graffiti"])
    sensitive: bool = Field(
        description="sensitive itself or through a parent: its incidents count in no viewer layer"
    )
    description: str | None
    groups: list[str] = Field(description="codes of the category groups it belongs to (andts, …)")


@router.get("", summary="The category taxonomy with Swedish and English labels")
def categories(_: CurrentPrincipal, session: SessionDep) -> list[CategoryOut]:
    """Return every category, ordered by code."""
    return [CategoryOut(**row) for row in list_categories(session.connection())]
