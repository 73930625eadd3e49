"""Hook implementations of crm-accounting. Plugins import from ``crmcore.plugin_api`` only.

Contributes nothing yet: the accounting tab is planned, not built.
"""
