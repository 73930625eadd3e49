"""Hook implementations of crm-sms. Plugins import from ``crmcore.plugin_api`` only.

The SMS and WhatsApp channels arrive with their own issue; until then this plugin only registers itself.
"""
