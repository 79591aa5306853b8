"""Labs runs need the job runtime and the fake model server of the job tests."""

from tests.jobs.conftest import fake_model, settings, start_runtime, system_db  # noqa: F401
