from tests.client.conftest import Live, live_server  # noqa: F401
from tests.jobs.conftest import fake_model, settings, start_runtime, system_db  # noqa: F401
