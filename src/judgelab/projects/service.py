"""Projects, agents and API keys: the scopes everything else lives in."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from judgelab.db.models import Agent, ApiKey, Project
from judgelab.errors import Conflict, InvalidInput, NotFound

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


def create_api_key(session: Session, project: Project, name: str = "") -> NewKey:
    if len(name or "") > 200:
        raise InvalidInput("name", f"is {len(name)} characters; the limit is 200")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(project_id=project.id, name=name or "", prefix=key[:10], key_hash=hash_key(key))
    session.add(row)
    session.flush()
    return NewKey(key, row)


def authenticate(session: Session, key: str) -> ApiKey | None:
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
    if row is None or row.revoked_at is not None:
        return None
    return row


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
