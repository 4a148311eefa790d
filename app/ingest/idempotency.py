"""Idempotency-Key: a retried POST gets the first answer instead of doing the work twice."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, text

from app.core.errors import Conflict, InvalidInput

# A request that has not finished after this long is taken to have died with its process.
ABANDONED_AFTER = "10 minutes"


@dataclass(frozen=True)
class StoredAnswer:
    """The answer given the first time."""

    status_code: int
    body: Any


def request_digest(body: Any) -> str:
    """Return a digest of a JSON body that ignores key order and white space."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def claim(engine: Engine, organisation_id: int, key: str, digest: str) -> StoredAnswer | None:
    """Claim a key for this request, or return the answer already given for it.

    Raises 422 when the key was used with another body, 409 while the first request runs.
    """
    if not 1 <= len(key) <= 200:
        raise InvalidInput("Idempotency-Key must be 1 to 200 characters")
    with engine.begin() as conn:
        claimed = conn.execute(
            text("""
                INSERT INTO est.idempotency_key (organisation_id, key, request_sha256)
                VALUES (:org, :key, :digest)
                ON CONFLICT (organisation_id, key) DO UPDATE
                    SET request_sha256 = EXCLUDED.request_sha256, created_at = now()
                    WHERE est.idempotency_key.status_code IS NULL
                      AND est.idempotency_key.created_at < now() - CAST(:abandoned AS interval)
                RETURNING key
            """),
            {"org": organisation_id, "key": key, "digest": digest, "abandoned": ABANDONED_AFTER},
        ).one_or_none()
        if claimed is not None:
            return None
        row = conn.execute(
            text(
                "SELECT request_sha256, status_code, response FROM est.idempotency_key "
                "WHERE organisation_id = :org AND key = :key"
            ),
            {"org": organisation_id, "key": key},
        ).one()
    if row.request_sha256 != digest:
        raise InvalidInput("this Idempotency-Key was used with another request body")
    if row.status_code is None:
        raise Conflict("a request with this Idempotency-Key is still being processed")
    return StoredAnswer(status_code=row.status_code, body=row.response)


def complete(conn: Connection, organisation_id: int, key: str, status_code: int, body: Any) -> None:
    """Store the answer for replays, in the transaction that did the work (so both or neither)."""
    conn.execute(
        text(
            "UPDATE est.idempotency_key SET status_code = :status, "
            "response = CAST(:body AS jsonb) WHERE organisation_id = :org AND key = :key"
        ),
        {
            "org": organisation_id,
            "key": key,
            "status": status_code,
            "body": orjson.dumps(body).decode(),
        },
    )


def release(engine: Engine, organisation_id: int, key: str) -> None:
    """Forget a claim whose request failed, so that a retry can run."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "DELETE FROM est.idempotency_key WHERE organisation_id = :org AND key = :key "
                "AND status_code IS NULL"
            ),
            {"org": organisation_id, "key": key},
        )
