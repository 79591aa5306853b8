"""Projects, agents and API keys: the scopes everything else lives in."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from judgelab.db.models import Agent, ApiKey, Project
from judgelab.db.types import utcnow
from judgelab.errors import Conflict, Forbidden, InvalidInput, NotFound

KEY_PREFIX = "jl_"
MAX_ID = 2**31 - 1  # ids are 32-bit on PostgreSQL; larger ones cannot exist


def hash_key(key: str) -> str:
    # Keys are 256 random bits, so a plain SHA-256 is enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


def _check_name(field: str, name: str, max_len: int = 200) -> str:
    name = name.strip() if isinstance(name, str) else name
    if not isinstance(name, str) or not name:
        raise InvalidInput(field, "must be a non-empty string")
    if len(name) > max_len:
        raise InvalidInput(field, f"is {len(name)} characters; the limit is {max_len}")
    if "\x00" in name:
        raise InvalidInput(field, "contains a NUL character")
    return name


def get_or_create_project(session: Session, name: str, description: str = "") -> tuple[Project, bool]:
    name = _check_name("name", name)
    project = session.scalar(select(Project).where(Project.name == name))
    if project:
        return project, False
    return create_project(session, name, description), True


def create_project(session: Session, name: str, description: str = "") -> Project:
    name = _check_name("name", name)
    if session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise Conflict("name", f"a project named {name!r} already exists")
    project = Project(name=name, description=description or "")
    session.add(project)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict("name", f"a project named {name!r} already exists") from None
    return project


@dataclass
class NewKey:
    key: str  # shown once; only its hash is stored
    api_key: ApiKey


def create_api_key(session: Session, project: Project, name: str = "", *, admin: bool = False) -> NewKey:
    if len(name or "") > 200:
        raise InvalidInput("name", f"is {len(name)} characters; the limit is 200")
    if "\x00" in (name or ""):
        raise InvalidInput("name", "contains a NUL character")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(project_id=project.id, name=name or "", prefix=key[:10], key_hash=hash_key(key), is_admin=admin)
    session.add(row)
    session.flush()
    return NewKey(key, row)


def authenticate(session: Session, key: str) -> ApiKey | None:
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
    if row is None or row.revoked_at is not None:
        return None
    return row


def key_to_dict(key: ApiKey) -> dict[str, object]:
    return {"id": key.id, "project": key.project_id, "name": key.name, "prefix": key.prefix, "admin": key.is_admin,
            "created_at": key.created_at.isoformat(), "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None}


def list_keys(session: Session, project_id: int, *, admin: bool) -> list[ApiKey]:
    """A project's keys; an admin key sees every project's."""
    stmt = select(ApiKey).order_by(ApiKey.id)
    if not admin:
        stmt = stmt.where(ApiKey.project_id == project_id)
    return list(session.scalars(stmt).all())


def revoke_key(session: Session, project_id: int, key_id: int, *, admin: bool) -> ApiKey:
    row = session.get(ApiKey, key_id) if 1 <= key_id <= MAX_ID else None
    if row is None or (not admin and row.project_id != project_id):
        raise NotFound("id", f"no API key with id {key_id} in this project")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def is_local_file_model(model: str) -> bool:
    """`local/<path>.gguf` (a file on the server's disk), as opposed to a named local model."""
    provider, _, name = model.partition("/")
    return provider == "local" and ("/" in name or name.endswith(".gguf") or name.startswith("."))


def check_model(session: Session, project_id: int, model: str | None, *, admin: bool, field: str = "model") -> None:
    """A judge model this project may use: on its allow-list when it has one; a local model file
    only for admin keys (it names a path on the server)."""
    if not model:
        return
    if is_local_file_model(model) and not admin:
        raise Forbidden(field, f"{model!r} names a model file on the server: only an admin key may choose one")
    project = session.get(Project, project_id)
    allowed = project.allowed_models if project is not None else None
    if allowed is not None and model not in allowed:
        raise InvalidInput(field, f"{model!r} is not on this project's allow-list of judge models ({', '.join(allowed) or 'empty'})")


def count_keys(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ApiKey)) or 0


def create_agent(session: Session, project_id: int, name: str, description: str = "") -> Agent:
    name = _check_name("name", name)
    if "\x00" in (description or ""):
        raise InvalidInput("description", "contains a NUL character (\\u0000), which cannot be stored")
    if session.scalar(select(Agent.id).where(Agent.project_id == project_id, Agent.name == name)) is not None:
        raise Conflict("name", f"an agent named {name!r} already exists in this project")
    agent = Agent(project_id=project_id, name=name, description=description or "")
    session.add(agent)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict("name", f"an agent named {name!r} already exists in this project") from None
    return agent


def get_agent(session: Session, project_id: int, agent_id: int, field: str = "agent") -> Agent:
    agent = session.get(Agent, agent_id) if 1 <= agent_id <= MAX_ID else None
    if agent is None or agent.project_id != project_id:
        raise NotFound(field, f"no agent with id {agent_id} in this project")
    return agent


def resolve_agent(session: Session, project_id: int, ref: int | str, *, create: bool = False, field: str = "agent") -> Agent:
    """An agent by id or exact name; with `create`, an unknown name makes a new agent."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        agent = session.get(Agent, ref) if 1 <= ref <= MAX_ID else None
        if agent is None or agent.project_id != project_id:
            raise InvalidInput(field, f"no agent with id {ref} in this project")
        return agent
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInput(field, "expected an agent id or name")
    agent = session.scalar(select(Agent).where(Agent.project_id == project_id, Agent.name == ref.strip()))
    if agent is not None:
        return agent
    if ref.strip().isdigit():
        return resolve_agent(session, project_id, int(ref.strip()), field=field)
    if create:
        return create_agent(session, project_id, ref)
    raise InvalidInput(field, f"no agent named {ref!r} in this project (create it with POST /api/v1/agents/)")
