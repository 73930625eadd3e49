"""crm-sms: SMS and WhatsApp for crmcore contacts, through Twilio."""

__version__ = "0.1.0"
