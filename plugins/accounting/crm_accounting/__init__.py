"""crm-accounting: Accounting data of crmcore contacts (auxiliary accounts, fiscal position, invoicing policy)."""

__version__ = "0.1.0"
