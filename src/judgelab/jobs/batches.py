"""An evaluation job's provider batches, remembered in the database (`judges/batch.py`'s store)."""

from __future__ import annotations

from sqlalchemy import select, update

from judgelab.db import Database
from judgelab.db.models import ProviderBatch
from judgelab.db.types import utcnow


class JobBatches:
    """The batches of one job. `find` answers, for each request key, the newest batch holding it."""

    def __init__(self, db: Database, job_id: str) -> None:
        self.db, self.job_id = db, job_id

    def find(self, keys: list[str]) -> dict[str, str]:
        wanted: set[str] = set(keys)
        found: dict[str, str] = {}
        with self.db.session() as session:
            rows = session.execute(select(ProviderBatch.batch_id, ProviderBatch.request_keys)
                                   .where(ProviderBatch.job_id == self.job_id).order_by(ProviderBatch.id)).all()
        for batch_id, held in rows:
            found.update({k: batch_id for k in held if k in wanted})
        return found

    def save(self, provider: str, batch_id: str, keys: list[str]) -> None:
        with self.db.write_session() as session:
            session.add(ProviderBatch(job_id=self.job_id, provider=provider, batch_id=batch_id, request_keys=keys))

    def ended(self, batch_id: str, status: str) -> None:
        with self.db.write_session() as session:
            session.execute(update(ProviderBatch).where(ProviderBatch.job_id == self.job_id,
                                                        ProviderBatch.batch_id == batch_id)
                            .values(status=status, ended_at=utcnow()))
