"""presencesync: keeps contact-center agent state and Salesforce Omni-Channel presence in sync."""

__version__ = "0.1.0"
