"""The Salesforce connector: OAuth login, REST/SOQL client, Omni-Channel readers."""

from .auth import AccessToken, SalesforceCredentials, default_audience
from .client import AsyncSalesforceClient, SalesforceClient
from .errors import (
    SalesforceApiError,
    SalesforceAuthError,
    SalesforceError,
    SalesforceLimitError,
    SalesforcePubSubError,
    SalesforceQueryError,
    SalesforceUnavailable,
)
from .models import OpenWork, PresenceStatus, UserPresence
from .omni import current_presences, fetch_omni_configuration, open_work, record_owners
from .protocol import DEFAULT_API_VERSION, ApiUsage, RetryPolicy

__all__ = [
    "DEFAULT_API_VERSION",
    "AccessToken",
    "ApiUsage",
    "AsyncSalesforceClient",
    "OpenWork",
    "PresenceStatus",
    "RetryPolicy",
    "SalesforceApiError",
    "SalesforceAuthError",
    "SalesforceClient",
    "SalesforceCredentials",
    "SalesforceError",
    "SalesforceLimitError",
    "SalesforcePubSubError",
    "SalesforceQueryError",
    "SalesforceUnavailable",
    "UserPresence",
    "current_presences",
    "default_audience",
    "fetch_omni_configuration",
    "open_work",
    "record_owners",
]
