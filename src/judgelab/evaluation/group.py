"""Evaluating many (call, metric) pairs at once, with the database work done in groups.

A job chunk holds tens of evaluations; `evaluate_one` and `evaluate_pairs` (below) are groups of
one call. Done one by one, each evaluation cost two transactions and about ten statements, and at
the provider's limit that CPU, not the model, bounded a job. Here one read transaction finds the
group's finished job items, metric versions, calls and cached results; cache hits are written in
one transaction; and results are written as they come back, in groups (`GROUP_SIZE` results,
`GROUP_SECONDS` after the first one waiting, or the group's last result, whichever comes first),
each group's results and job items in one transaction (`_Writer`).

The job item written with a result stays the idempotency record: a replayed group skips every
pair that has one. A process killed mid-group therefore loses nothing and stores nothing twice;
it pays again only for the evaluations in flight and those answered in the last `GROUP_SECONDS`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from judgelab.calls.queries import get_calls_for_judging
from judgelab.db import Database
from judgelab.db.models import JobItem, MetricResult
from judgelab.db.types import utcnow
from judgelab.evaluation.engine import ClientFor, Outcome, evaluate, result_key
from judgelab.evaluation.sandbox import Limits
from judgelab.evaluation.service import (
    _DB_THREADS,
    _RESULT_COLUMNS,
    Item,
    Report,
    _Prepared,
    _Version,
    _version,
    plan_stages,
)

GROUP_SIZE = 64
GROUP_SECONDS = 0.02

Pair = tuple[int, int, int]  # (call id, metric id, metric version id)


@dataclass
class _Failed:
    """A pair that cannot be evaluated at all (its call or metric version is gone): an explicit
    error in its job item, never a silent gap."""

    call_id: int
    metric_id: int
    version_id: int
    message: str


def _result_row(project_id: int, call_id: int, metric_id: int, version_id: int, outcome: Outcome, key: str,
                job_id: str | None) -> dict[str, Any]:
    return {"project_id": project_id, "call_log_id": call_id, "metric_id": metric_id, "metric_version_id": version_id,
            "value": outcome.value, "score": outcome.score, "explanation": outcome.explanation, "extra": outcome.extra,
            "error": outcome.error, "model": outcome.model, "input_tokens": outcome.input_tokens,
            "output_tokens": outcome.output_tokens, "cost_usd": outcome.cost_usd, "cache_key": key, "job_id": job_id,
            "created_at": utcnow()}


def _item_row(job_id: str, call_id: int, metric_id: int, item: Item, error: str | None = None) -> dict[str, Any]:
    return {"job_id": job_id, "call_log_id": call_id, "metric_id": metric_id, "outcome": item.outcome,
            "result_id": item.result_id, "llm_calls": item.llm_calls, "input_tokens": item.input_tokens,
            "output_tokens": item.output_tokens, "cost_usd": item.cost_usd, "error": error, "created_at": utcnow()}


def _insert_results(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    if not rows:
        return []
    stmt = insert(MetricResult).returning(MetricResult.id, sort_by_parameter_order=True)
    return [int(r[0]) for r in session.execute(stmt, rows).all()]


def _insert_items(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(JobItem), rows)


def _finished(session: Session, job_id: str | None, pairs: list[Pair]) -> dict[tuple[int, int], Item]:
    if job_id is None or not pairs:
        return {}
    rows = session.execute(select(JobItem.call_log_id, JobItem.metric_id, JobItem.outcome, JobItem.result_id).where(
        JobItem.job_id == job_id, JobItem.call_log_id.in_({c for c, _m, _v in pairs}),
        JobItem.metric_id.in_({m for _c, m, _v in pairs}))).all()
    return {(r.call_log_id, r.metric_id): Item(r.outcome, r.result_id) for r in rows}


def _cache(session: Session, project_id: int, keyed: dict[tuple[int, int], str]) -> tuple[dict[tuple[int, int], Any], dict[str, Any]]:
    """(the newest result per pair, the newest error-free result per key among the other pairs' keys)."""
    if not keyed:
        return {}, {}
    calls, metrics = {c for c, _m in keyed}, {m for _c, m in keyed}
    newest_ids = (select(func.max(MetricResult.id)).where(MetricResult.call_log_id.in_(calls),
                                                           MetricResult.metric_id.in_(metrics))
                  .group_by(MetricResult.call_log_id, MetricResult.metric_id))
    newest = {(r.call_log_id, r.metric_id): r for r in session.execute(
        select(*_RESULT_COLUMNS, MetricResult.call_log_id, MetricResult.metric_id)
        .where(MetricResult.id.in_(newest_ids))).all()}
    wanted = {key for pair, key in keyed.items()
              if not ((row := newest.get(pair)) is not None and row.cache_key == key and row.error is None)}
    older: dict[str, Any] = {}
    if wanted:
        older_ids = (select(func.max(MetricResult.id)).where(
            MetricResult.cache_key.in_(wanted), MetricResult.project_id == project_id, MetricResult.error.is_(None))
            .group_by(MetricResult.cache_key))
        older = {row.cache_key: row for row in session.execute(
            select(*_RESULT_COLUMNS).where(MetricResult.id.in_(older_ids))).all()}
    return newest, older


def _prepare(db: Database, project_id: int, pairs: list[Pair], default_model: str | None, force: bool,
             job_id: str | None) -> tuple[dict[tuple[int, int], Item], list[_Prepared], list[_Failed],
                                             list[tuple[tuple[int, int], _Prepared, Any]]]:
    """(finished pairs, pairs to evaluate, pairs that cannot be, cache hits to record)."""
    with db.session() as session:
        done = _finished(session, job_id, pairs)
        todo = [p for p in pairs if (p[0], p[1]) not in done]
        versions: dict[int, _Version | str] = {}
        for _c, m, v in todo:
            if v not in versions:
                try:
                    versions[v] = _version(db, session, project_id, m, v)[1]
                except Exception as exc:  # noqa: BLE001 - a deleted metric fails its pairs, not the group
                    versions[v] = f"could not evaluate: {type(exc).__name__}: {str(exc)[:300]}"
        # Only code reads other metrics' results; a judge sees the conversation alone.
        reads_results = any(not isinstance(x, str) and "custom_code" in (x.content.type, x.content.trigger_type)
                            for x in versions.values())
        calls = get_calls_for_judging(session, project_id, [c for c, _m, _v in todo], with_results=reads_results)
        failed: list[_Failed] = []
        prepared: dict[tuple[int, int], _Prepared] = {}
        for c, m, v in todo:
            version = versions[v]
            if isinstance(version, str):
                failed.append(_Failed(c, m, v, version))
                continue
            if c not in calls:
                failed.append(_Failed(c, m, v, f"could not evaluate: NotFound: no call log with id {c} in this project"))
                continue
            call, call_hash = calls[c]
            others = {r["name"]: r["value"] for r in call["evaluation"]["metrics"]
                      if r["error"] is None and r["metric_id"] != m}
            key = result_key(version.content_hash, version.content.type, version.model or default_model, call_hash,
                             others)
            prepared[(c, m)] = _Prepared(call, m, version, others, key)
        hits: list[tuple[tuple[int, int], _Prepared, Any]] = []
        if not force:
            newest, older = _cache(session, project_id, {pair: p.key for pair, p in prepared.items()})
            for pair, p in list(prepared.items()):
                row = newest.get(pair)
                if row is not None and row.cache_key == p.key and row.error is None:
                    hits.append((pair, p, None))
                    done[pair] = Item("cached", row.id, row.value)
                    del prepared[pair]
                elif (copy := older.get(p.key)) is not None:
                    hits.append((pair, p, copy))
                    del prepared[pair]
        return done, list(prepared.values()), failed, hits


def _record_hits(db: Database, project_id: int, job_id: str | None, hits: list[tuple[tuple[int, int], _Prepared, Any]],
                 failed: list[_Failed], done: dict[tuple[int, int], Item]) -> None:
    """Copies of older results, and job items for every hit and failure, in one transaction."""
    for f in failed:  # no result row: its call or its metric version is gone
        done[(f.call_id, f.metric_id)] = Item("error", None)
    copies = [(pair, p, row) for pair, p, row in hits if row is not None]
    if not copies and (job_id is None or not (hits or failed)):
        return
    with db.write_session() as session:
        ids = _insert_results(session, [_result_row(
            project_id, pair[0], pair[1], p.version.version_id,
            Outcome(value=row.value, score=row.score, explanation=row.explanation,
                    extra={**row.extra, "copied_from_result": row.id}, model=row.model), p.key, job_id)
            for pair, p, row in copies])
        for (pair, _p, row), row_id in zip(copies, ids, strict=True):
            done[pair] = Item("cached", row_id, row.value)
        if job_id is None:
            return
        items = [_item_row(job_id, f.call_id, f.metric_id, done[(f.call_id, f.metric_id)], error=f.message)
                 for f in failed]
        items += [_item_row(job_id, pair[0], pair[1], done[pair]) for pair, _p, _row in hits]
        _insert_items(session, items)


def _kind(outcome: Outcome) -> str:
    if outcome.error:
        return "error"
    return "cached" if "copied_from_result" in outcome.extra else "evaluated"


Waiting = tuple[int, "str | None", _Prepared, Outcome, "asyncio.Future[Item]"]  # project, job, pair, outcome


class _Writer:
    """Results as they come back, from every group of this process, written together: a group's
    transaction starts `GROUP_SECONDS` after its first result came back, or at once when
    `GROUP_SIZE` are waiting. One writer per database and event loop, so the chunks a worker runs
    at once share transactions instead of each paying its own."""

    def __init__(self, db: Database, loop: asyncio.AbstractEventLoop) -> None:
        self.db, self.loop = db, loop
        self._waiting: list[Waiting] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    @staticmethod
    def of(db: Database) -> _Writer:
        loop = asyncio.get_running_loop()
        writers: dict[int, _Writer] = db.memo.setdefault("result_writers", {})
        writer = writers.get(id(loop))
        if writer is None or writer.loop is not loop:  # a new loop may reuse a closed one's id
            writer = writers[id(loop)] = _Writer(db, loop)
        return writer

    def add(self, project_id: int, job_id: str | None, prepared: _Prepared, outcome: Outcome) -> asyncio.Future[Item]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Item] = loop.create_future()
        self._waiting.append((project_id, job_id, prepared, outcome, future))
        if len(self._waiting) >= GROUP_SIZE:
            self.flush()
        elif self._timer is None:
            self._timer = loop.call_later(GROUP_SECONDS, self.flush)
        return future

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        group, self._waiting = self._waiting, []
        if group:
            task = asyncio.get_running_loop().create_task(self._write(group))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _write(self, group: list[Waiting]) -> None:
        loop = asyncio.get_running_loop()
        try:
            items = await loop.run_in_executor(_DB_THREADS, self._store, group)
        except Exception as exc:  # noqa: BLE001 - handed to each waiting evaluation
            for *_rest, future in group:
                if not future.done():
                    future.set_exception(exc)
            return
        for (*_rest, future), item in zip(group, items, strict=True):
            if not future.done():
                future.set_result(item)

    def _store(self, group: list[Waiting]) -> list[Item]:
        try:
            with self.db.write_session() as session:
                ids = _insert_results(session, [
                    _result_row(project_id, p.call["id"], p.metric_id, p.version.version_id, o, p.key, job_id)
                    for project_id, job_id, p, o, _f in group])
                items = [Item(_kind(o), row_id, o.value, o.llm_calls, o.input_tokens, o.output_tokens, o.cost_usd)
                         for (_pid, _jid, _p, o, _f), row_id in zip(group, ids, strict=True)]
                _insert_items(session, [_item_row(job_id, p.call["id"], p.metric_id, item)
                                        for (_pid, job_id, p, _o, _f), item in zip(group, items, strict=True)
                                        if job_id is not None])
                return items
        except IntegrityError:
            # Another runner stored some of these first (a recovered workflow racing its
            # predecessor): one by one, keeping theirs.
            return [_store_one(self.db, project_id, job_id, p, o) for project_id, job_id, p, o, _f in group]


def _store_one(db: Database, project_id: int, job_id: str | None, p: _Prepared, outcome: Outcome) -> Item:
    """One result and its job item; when the job item is there already, the stored one."""
    call_id = p.call["id"]
    try:
        with db.write_session() as session:
            (row_id,) = _insert_results(session, [_result_row(project_id, call_id, p.metric_id, p.version.version_id,
                                                               outcome, p.key, job_id)])
            item = Item(_kind(outcome), row_id, outcome.value, outcome.llm_calls, outcome.input_tokens,
                        outcome.output_tokens, outcome.cost_usd)
            if job_id is not None:
                _insert_items(session, [_item_row(job_id, call_id, p.metric_id, item)])
            return item
    except IntegrityError:
        with db.session() as session:
            done = _finished(session, job_id, [(call_id, p.metric_id, p.version.version_id)]).get((call_id, p.metric_id))
        if done is None:
            raise
        return done


async def evaluate_group(
    db: Database,
    project_id: int,
    pairs: list[Pair],
    client_for: ClientFor,
    default_model: str | None,
    *,
    force: bool = False,
    job_id: str | None = None,
    limits: Limits | None = None,
) -> list[Item]:
    """Evaluate every pair concurrently and store the results; one Item per pair, in order.
    Idempotent within a job: a pair with a job item is not evaluated again."""
    loop = asyncio.get_running_loop()
    done, todo, failed, hits = await loop.run_in_executor(_DB_THREADS, _prepare, db, project_id, pairs, default_model,
                                                          force, job_id)
    if hits or failed:
        await loop.run_in_executor(_DB_THREADS, _record_hits, db, project_id, job_id, hits, failed, done)
    writer = _Writer.of(db)
    # The group's last result is written at once: nothing else of it is coming to share the write.
    pending = [len(todo)]

    async def store(p: _Prepared, outcome: Outcome) -> Item:
        future = writer.add(project_id, job_id, p, outcome)
        pending[0] -= 1
        if pending[0] == 0:
            writer.flush()
        return await future
    # Identical calls judged by the same judge version share one verdict (unless forced): the first
    # is asked, the others copy its result, as the cache would have. Not code: it may read the
    # call's id or time, which identical conversations do not share.
    first: dict[str, asyncio.Future[tuple[Outcome, Item] | None]] = {}

    async def one(p: _Prepared) -> None:
        pair = (p.call["id"], p.metric_id)
        shares = not force and p.version.content.type != "custom_code"
        leader = first.get(p.key) if shares else None
        mine: asyncio.Future[tuple[Outcome, Item] | None] | None = None
        if leader is None and shares:
            mine = first[p.key] = asyncio.get_running_loop().create_future()
        try:
            if leader is not None and (shared := await leader) is not None and shared[0].error is None:
                outcome, item = shared
                copy = Outcome(value=outcome.value, score=outcome.score, explanation=outcome.explanation,
                               extra={**outcome.extra, "copied_from_result": item.result_id}, model=outcome.model)
                done[pair] = await store(p, copy)
                return
            try:
                outcome = await evaluate(p.version.content, p.call, client_for, default_model,
                                         other_results=p.others, limits=limits)
            except Exception as exc:  # noqa: BLE001 - an engine failure is this pair's explicit error
                outcome = Outcome(error=f"could not evaluate: {type(exc).__name__}: {str(exc)[:300]}",
                                  model=p.version.model or default_model)
            done[pair] = await store(p, outcome)
            if mine is not None:
                mine.set_result((outcome, done[pair]))
        finally:
            if mine is not None and not mine.done():
                mine.set_result(None)  # never leave a follower waiting: it evaluates for itself

    await asyncio.gather(*(one(p) for p in todo))
    return [done[(c, m)] for c, m, _v in pairs]


async def evaluate_one(
    db: Database,
    project_id: int,
    call_id: int,
    metric_id: int,
    client_for: ClientFor,
    default_model: str | None,
    *,
    version_id: int | None = None,
    force: bool = False,
    job_id: str | None = None,
    limits: Limits | None = None,
) -> Item:
    """Evaluate one metric version (the current one unless given) on one call and store the result."""
    if version_id is None:
        with db.session() as session:
            version_id = _version(db, session, project_id, metric_id, None)[1].version_id
    (item,) = await evaluate_group(db, project_id, [(call_id, metric_id, version_id)], client_for, default_model,
                                   force=force, job_id=job_id, limits=limits)
    return item


async def evaluate_pairs(
    db: Database,
    project_id: int,
    call_ids: list[int],
    metric_ids: list[int],
    client_for: ClientFor,
    default_model: str | None,
    *,
    force: bool = False,
    job_id: str | None = None,
    limits: Limits | None = None,
) -> Report:
    """Evaluate every metric on every call, one call at a time (so identical calls share a
    verdict through the cache, code metrics too); a code metric runs after the metrics it reads."""
    report = Report(total=len(call_ids) * len(dict.fromkeys(metric_ids)))
    with db.session() as session:
        order = plan_stages(session, project_id, metric_ids)
    for call_id in call_ids:
        for stage in order:
            items = await evaluate_group(db, project_id, [(call_id, m, v) for m, v in stage], client_for,
                                         default_model, force=force, job_id=job_id, limits=limits)
            for item in items:
                item.add_to(report)
    return report
