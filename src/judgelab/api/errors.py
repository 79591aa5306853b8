"""Every failure becomes a JSON body that names the field and the problem: {"detail", "errors"}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from judgelab.errors import JudgelabError, field_path

_LOCATIONS = {"body", "query", "path", "header"}


def _body(detail: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"detail": detail, "errors": errors or []}


def _field_of(loc: tuple[Any, ...]) -> tuple[str, str]:
    parts = list(loc)
    where = parts.pop(0) if parts and parts[0] in _LOCATIONS else "body"
    return where, field_path(parts)


ERROR_SCHEMA = {
    "type": "object",
    "required": ["detail", "errors"],
    "properties": {
        "detail": {"type": "string", "description": "what is wrong, naming the field"},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["message"],
            "properties": {"field": {"type": "string"}, "message": {"type": "string"},
                           "location": {"type": "string"}, "line": {"type": "integer"}}}},
    },
    "additionalProperties": True,  # some refusals carry more (a cost guard's estimate)
}
_DOCUMENTED = {
    "400": "a value the service rejects (the field is named)", "401": "no API key, or an unknown or revoked one",
    "403": "the key may not do this (an admin-only act)", "404": "no such object in this project",
    "405": "the path does not take this method", "409": "a duplicate, or a state that forbids the act",
    "413": "the request body is over the size limit", "422": "a body or parameter of the wrong shape",
}
_BOUNDS = {"page_size": {"minimum": 1, "maximum": 200}, "page": {"minimum": 1, "maximum": 10_000_000}}


def document(app: FastAPI) -> None:
    """The OpenAPI schema tells the truth: every operation lists the error answers it may give,
    all in the one shape `{"detail", "errors"}`, and paging parameters carry their bounds."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = base()
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        for path, item in schema.get("paths", {}).items():
            for operation in item.values():
                responses = operation.setdefault("responses", {})
                for code, why in _DOCUMENTED.items():
                    if code == "401" and path == "/healthz":
                        continue
                    responses[code] = {"description": why, **ref}
                for param in operation.get("parameters", []):
                    if param.get("name") in _BOUNDS and param.get("in") == "query":
                        inner = param.setdefault("schema", {})
                        options = inner.get("anyOf")
                        target = next((o for o in options if o.get("type") == "integer"), inner) if options else inner
                        target.update(_BOUNDS[param["name"]])
        schema["components"]["schemas"].pop("HTTPValidationError", None)
        schema["components"]["schemas"].pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _flat(routes: Any) -> Any:
    """Every route, through included routers (FastAPI keeps those as objects of their own)."""
    for route in routes:
        inner = getattr(getattr(route, "original_router", None), "routes", None)
        if inner is not None:
            yield from _flat(inner)
        else:
            yield route


def _other_methods(request: Request) -> list[str]:
    """Methods a static path (no parameters) takes, when the request's method is not one of them:
    GET on a POST-only path is a 405, not a 422 from a parameterised sibling path."""
    from starlette.routing import Match

    allowed: set[str] = set()
    for route in _flat(request.app.routes):
        path = getattr(route, "path", "")
        if "{" in path or not hasattr(route, "methods"):
            continue
        match, _ = route.matches({**request.scope, "method": next(iter(route.methods or {"GET"}))})
        if match == Match.FULL:
            allowed |= set(route.methods or ())
    return sorted(allowed) if allowed and request.method not in allowed else []


def install(app: FastAPI) -> None:
    from judgelab.web.common import BadCsrf, LoginRequired, html_error, is_ui_path

    @app.exception_handler(LoginRequired)
    @app.exception_handler(BadCsrf)
    async def _web(request: Request, exc: Exception) -> Response:
        return html_error(request, exc)

    @app.exception_handler(JudgelabError)
    async def _domain(request: Request, exc: JudgelabError) -> Response:
        if is_ui_path(request.url.path):
            return html_error(request, exc)
        body = {**_body(str(exc), [e.as_dict() for e in exc.errors]), **jsonable_encoder(exc.extra)}
        return JSONResponse(body, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        if methods := _other_methods(request):
            return JSONResponse(_body("method not allowed on this endpoint; see /docs for the API"), status_code=405,
                                headers={"Allow": ", ".join(methods)})
        if is_ui_path(request.url.path):
            return html_error(request, StarletteHTTPException(400, "; ".join(
                f"{'.'.join(map(str, e.get('loc', ())[1:]))}: {e.get('msg')}" for e in exc.errors()[:3])))
        errors = []
        for e in exc.errors():
            where, field = _field_of(tuple(e.get("loc", ())))
            msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
            if e.get("type") == "json_invalid":
                field, msg = "", f"the request body is not valid JSON ({e.get('ctx', {}).get('error', 'parse error')})"
            elif e.get("type") == "missing" and not field:
                msg = "a JSON request body is required"
            errors.append({"field": field, "location": where, "message": msg})
        detail = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors[:5])
        return JSONResponse(_body(detail, errors), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if is_ui_path(request.url.path) and request.method in ("GET", "POST") and exc.status_code in (400, 404, 405):
            return html_error(request, StarletteHTTPException(exc.status_code, "There is no such page." if exc.status_code == 404 else str(exc.detail)))
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = "no such endpoint; see /docs for the API"
        elif exc.status_code == 405:
            detail = "method not allowed on this endpoint; see /docs for the API"
        return JSONResponse(_body(detail), status_code=exc.status_code, headers=getattr(exc, "headers", None))

    # Safety nets: the services validate first, so reaching these means a check is missing.
    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        return JSONResponse(_body("the request conflicts with existing data (a duplicate or a missing reference)"), status_code=409)

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> JSONResponse:
        return JSONResponse(_body(f"a value could not be stored: {str(exc.orig).splitlines()[0]}"), status_code=400)

    @app.exception_handler(RecursionError)
    async def _deep(_: Request, exc: RecursionError) -> JSONResponse:
        return JSONResponse(_body("the request body nests too deeply"), status_code=400)
