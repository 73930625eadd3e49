"""Hook implementations of crm-marketing. Plugins import from ``crmcore.plugin_api`` only.

Contributes nothing yet: campaigns and the marketing tab are planned, not built.
"""
