"""Typed errors of the Salesforce connector.

Salesforce reports REST errors as a JSON list, ``[{"message": ..., "errorCode": ...}]``, and
OAuth errors as ``{"error": ..., "error_description": ...}``; these classes keep those fields so
callers (and the admin UI) can say exactly what went wrong.
"""

from __future__ import annotations


class SalesforceError(Exception):
    """Base class of every error raised by the connector."""


class SalesforceAuthError(SalesforceError):
    """Login failed, or the session stayed invalid after one re-login.

    ``error``/``description`` are the OAuth ``error``/``error_description`` of the token
    endpoint (e.g. ``invalid_grant`` / ``user hasn't approved this consumer``), or
    ``INVALID_SESSION_ID`` when a fresh token was rejected by the REST API.
    """

    def __init__(self, error: str, description: str = "", status_code: int | None = None) -> None:
        self.error = error
        self.description = description
        self.status_code = status_code
        detail = f"{error}: {description}" if description else error
        super().__init__(f"Salesforce authentication failed ({detail})")


class SalesforceApiError(SalesforceError):
    """The REST API answered with an error body ``[{"message", "errorCode"}]``."""

    def __init__(self, status_code: int, error_code: str, message: str) -> None:
        self.status_code = status_code
        self.error_code = error_code
        self.message = message
        super().__init__(f"Salesforce API error {status_code} {error_code}: {message}")


class SalesforceQueryError(SalesforceApiError):
    """A SOQL query was rejected (``MALFORMED_QUERY``, ``INVALID_FIELD``, ``INVALID_TYPE``...)."""


class SalesforceLimitError(SalesforceApiError):
    """The org's API request limit is exhausted (``REQUEST_LIMIT_EXCEEDED``).

    Not retried: the daily limit does not recover within any sensible backoff window.
    """


class SalesforceUnavailable(SalesforceError):
    """Salesforce could not be reached, or kept failing, after every retry attempt."""

    def __init__(self, attempts: int, last_error: str) -> None:
        self.attempts = attempts
        self.last_error = last_error
        super().__init__(f"Salesforce unavailable after {attempts} attempts: {last_error}")


class SalesforcePubSubError(SalesforceError):
    """The Pub/Sub API refused the subscription for good (wrong topic, no permission, Change
    Data Capture not enabled, credentials rejected again and again...).

    ``status`` is the gRPC status name (``NOT_FOUND``, ``PERMISSION_DENIED``...),
    ``error_code`` Salesforce's ``error-code`` trailer (``sfdc.platform.eventbus.grpc...``).
    """

    def __init__(self, status: str, error_code: str, message: str) -> None:
        self.status = status
        self.error_code = error_code
        self.message = message
        detail = f" [{error_code}]" if error_code else ""
        super().__init__(f"Salesforce Pub/Sub API error {status}{detail}: {message}")
