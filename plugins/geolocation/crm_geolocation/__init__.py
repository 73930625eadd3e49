"""crm-geolocation: Geolocation of crmcore contacts (GPS coordinates of addresses)."""

__version__ = "0.1.0"
