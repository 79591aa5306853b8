"""A typed Python client for the judgelab HTTP API.

    from judgelab.client import Client

    with Client("http://localhost:8000", api_key="jl_...") as jl:
        job = jl.evaluate(metrics=[7], call_logs=[1, 2, 3])
        print(jl.wait_job(job["id"])["progress"])

`Client` is synchronous, `AsyncClient` the same methods as coroutines. The URL and key default to
`JUDGELAB_URL` and `JUDGELAB_API_KEY`. A 4xx or 5xx answer raises `ApiError`, which carries the
server's message (`detail`), the per-field `errors` and the status.
"""

from judgelab.client.api import ApiError, AsyncClient, Client

__all__ = ["ApiError", "AsyncClient", "Client"]
