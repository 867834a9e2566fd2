"""Patient data under lock: encrypted at rest, sealed in events, and erasable from the topics.

Two kinds of key (Fernet: AES-128-CBC with HMAC-SHA256, from the `cryptography` library):

- **The application's keys**, `DATA_KEYS` (comma-separated; the first encrypts, every one
  decrypts, so that a key can be rotated: docs/personal-data.md). They encrypt the patient's
  contact in `intake.patient_contact` and wrap the keys below.
- **A key per request**, made when the request is received and kept (wrapped) in
  `access.request_key`. The patient's details travel in events sealed under it. Erasing the
  patient's data deletes that key: every copy of those events, in the broker's topics, in the
  outboxes or in a dead letter, can then no longer be read ("crypto-shredding"). The topics are
  append-only logs kept for months; rewriting them is not possible, destroying the key is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

KEY_TABLE = "access.request_key"
Sealed = TypeVar("Sealed", bound=BaseModel)


class DataKeys:
    """The application's keys (DATA_KEYS): the first encrypts, all decrypt."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("DATA_KEYS is empty: at least one key is needed")
        try:
            self._keys = MultiFernet([Fernet(key) for key in keys])
        except ValueError as error:
            raise ValueError(f"DATA_KEYS: a key is not a Fernet key ({error}); make one with `sas-data-key`") from None

    @classmethod
    def from_setting(cls, value: str) -> DataKeys:
        return cls([key.strip() for key in value.split(",") if key.strip()])

    @staticmethod
    def new_key() -> str:
        return Fernet.generate_key().decode()

    def encrypt(self, plain: str | None) -> str | None:
        return None if plain is None else self._keys.encrypt(plain.encode()).decode()

    def decrypt(self, token: str | None) -> str | None:
        return None if token is None else self._keys.decrypt(token.encode()).decode()

    def rotate(self, token: str) -> str:
        """The same value, encrypted under the first key (after a new key was put first)."""
        return self._keys.rotate(token.encode()).decode()


class Vault:
    """The keys of each request, wrapped under the application's keys, in the caller's transaction."""

    def __init__(self, keys: DataKeys) -> None:
        self.keys = keys

    async def create(self, session: AsyncSession, request_id: str, at: datetime) -> Fernet:
        key = Fernet.generate_key()
        await session.execute(
            text(f"INSERT INTO {KEY_TABLE} (request_id, wrapped_key, created_at) VALUES (:id, :key, :at)"),
            {"id": request_id, "key": self.keys.encrypt(key.decode()), "at": at},
        )
        return Fernet(key)

    async def key(self, session: AsyncSession, request_id: str) -> Fernet | None:
        """The request's key; None once its patient data was erased."""
        found = await session.execute(
            text(f"SELECT wrapped_key FROM {KEY_TABLE} WHERE request_id = :id"), {"id": request_id}
        )
        wrapped = found.scalar_one_or_none()
        return None if wrapped is None else Fernet((self.keys.decrypt(wrapped) or "").encode())

    async def destroy(self, session: AsyncSession, request_id: str) -> bool:
        """Forget the request's key: what was sealed under it can no longer be opened."""
        gone = await session.execute(text(f"DELETE FROM {KEY_TABLE} WHERE request_id = :id"), {"id": request_id})
        return bool(getattr(gone, "rowcount", 0))

    async def seal(self, session: AsyncSession, request_id: str, details: BaseModel) -> str | None:
        """`details` sealed under the request's key; None when it was erased (nothing to carry)."""
        key = await self.key(session, request_id)
        return None if key is None else seal_with(key, details)

    async def open(
        self, session: AsyncSession, request_id: str, token: str | None, model: type[Sealed]
    ) -> Sealed | None:
        """What was sealed, or None: nothing sealed, or the patient's data erased since."""
        if token is None:
            return None
        key = await self.key(session, request_id)
        if key is None:
            return None
        try:
            return model.model_validate_json(key.decrypt(token.encode()))
        except InvalidToken:
            raise ValueError(f"sealed data of request {request_id} does not open with its key") from None

    async def rotate(self, session: AsyncSession, batch: int = 500) -> int:
        """Wrap every request's key under the first application key; returns how many were."""
        done, after = 0, ""
        while True:
            rows = (
                await session.execute(
                    text(
                        f"SELECT request_id, wrapped_key FROM {KEY_TABLE} WHERE request_id > :after "
                        "ORDER BY request_id LIMIT :n"
                    ),
                    {"after": after, "n": batch},
                )
            ).all()
            for request_id, wrapped in rows:
                await session.execute(
                    text(f"UPDATE {KEY_TABLE} SET wrapped_key = :key WHERE request_id = :id"),
                    {"id": request_id, "key": self.keys.rotate(wrapped)},
                )
            done += len(rows)
            if len(rows) < batch:
                return done
            after = rows[-1][0]


def seal_with(key: Fernet, details: BaseModel) -> str:
    return key.encrypt(details.model_dump_json(exclude_none=True).encode()).decode()
