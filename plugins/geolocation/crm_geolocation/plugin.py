"""Hook implementations of crm-geolocation. Plugins import from ``crmcore.plugin_api`` only.

Contributes nothing yet: geocoding and the map tab are planned, not built.
"""
