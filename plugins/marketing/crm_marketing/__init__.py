"""crm-marketing: Marketing data of crmcore contacts (campaign, source, channel)."""

__version__ = "0.1.0"
