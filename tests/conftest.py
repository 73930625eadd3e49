"""Core test configuration. Fixtures come from ``crmcore.testing`` (also offered to plugin authors)."""
