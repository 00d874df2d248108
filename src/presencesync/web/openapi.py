"""The OpenAPI document: bearer auth and the one error shape on every API operation."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "example": "AGENT_NOT_FOUND"},
                "message": {"type": "string"},
                "details": {"description": "what exactly was wrong (e.g. every invalid field)"},
            },
            "required": ["code", "message", "details"],
        }
    },
    "required": ["error"],
}

ERRORS = {
    "401": "No token, or not a valid one",
    "403": "The token's role may not do this (or an agent token acting on another agent)",
    "404": "Not found in the token's account",
    "409": "Refused by the rules now (e.g. NOT_LOGGED_IN, AGENT_EXISTS)",
    "422": "Invalid request: INVALID_REQUEST (malformed JSON, wrong types) or a validation code",
}


def install_openapi(app: FastAPI, prefix: str) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description='All errors: `{"error": {"code", "message", "details"}}`.',
            routes=app.routes,
        )
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})["bearerAuth"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "a token of one account and one role (admin, supervisor, agent)",
        }
        schemas = components.setdefault("schemas", {})
        schemas["Error"] = ERROR_SCHEMA
        error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for path, operations in schema.get("paths", {}).items():
            if not path.startswith(prefix):
                continue
            for operation in operations.values():
                operation["security"] = [{"bearerAuth": []}]
                responses = operation.setdefault("responses", {})
                for code, description in ERRORS.items():
                    responses[code] = {"description": description, "content": error_ref}
        # FastAPI's own 422 body is replaced everywhere by the error shape above.
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = build  # type: ignore[method-assign]
