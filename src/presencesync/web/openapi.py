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

ERROR_REF = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}

# Every API operation can answer these (auth, limits, rules, validation).
ERRORS = {
    "401": "No token, or not a valid one (UNAUTHENTICATED, INVALID_TOKEN, SESSION_EXPIRED)",
    "403": "The token's role may not do this, an agent token acting on another agent "
    "(FORBIDDEN), the account lacks the feature (FEATURE_NOT_ENABLED), or a cookie-"
    "authenticated write without the session's CSRF token (CSRF_CHECK_FAILED)",
    "404": "Not found in the token's account (AGENT_NOT_FOUND, INTERACTION_NOT_FOUND, ...)",
    "409": "Refused by the rules now (e.g. NOT_LOGGED_IN, AGENT_EXISTS)",
    "413": "The request body is larger than the limit (PAYLOAD_TOO_LARGE)",
    "422": "Invalid request: INVALID_REQUEST (malformed JSON, wrong types) or a validation code",
    "429": "Too many requests with this token (RATE_LIMITED), or too many failed attempts "
    "from this address (TOO_MANY_FAILED_ATTEMPTS); retry after `Retry-After` seconds",
}
# Operations that take a body can also get a body that is not even text.
BODY_ERRORS = {
    "400": "The body could not be read at all: not UTF-8 (MALFORMED_BODY)",
}
# Outside the API (health, metrics): only the body limit applies.
OTHER_ERRORS = {"413": ERRORS["413"]}

HEADERS = {
    "401": {
        "WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}},
    },
    "429": {
        "Retry-After": {
            "description": "seconds until a request may succeed",
            "schema": {"type": "integer", "minimum": 1},
        },
    },
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
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                errors = dict(OTHER_ERRORS)
                if path.startswith(prefix):
                    operation["security"] = [{"bearerAuth": []}]
                    errors = dict(ERRORS)
                if "requestBody" in operation:
                    errors.update(BODY_ERRORS)
                for code, description in errors.items():
                    # A route's own description of a code is kept.
                    responses.setdefault(code, {"description": description})
                    responses[code]["content"] = ERROR_REF
                    if code in HEADERS:
                        responses[code]["headers"] = HEADERS[code]
                for code, response in responses.items():
                    if code[0] in "45" and "content" not in response:
                        response["content"] = ERROR_REF  # a route's own error codes
        # FastAPI's own 422 body is replaced everywhere by the error shape above.
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = build  # type: ignore[method-assign]
