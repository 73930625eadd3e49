"""SQLAlchemy models of the core. Plugins get the ones they need from ``crmcore.plugin_api``."""

from crmcore.models.base import JSONType, utcnow
from crmcore.models.contacts import (
    Contact,
    ContactAddress,
    ContactEmail,
    ContactPhone,
    ContactPhoto,
    NumberSequence,
    SearchToken,
    Tag,
    contact_owners,
    contact_tags,
)
from crmcore.models.duplicates import DuplicateDismissal
from crmcore.models.imports import ImportBatch, ImportBatchItem
from crmcore.models.merges import Merge
from crmcore.models.messages import Message, MessageTemplate
from crmcore.models.records import ContactWarning, HistoryEntry, Note
from crmcore.models.settings import CustomFieldDefinition, LookupValue, PluginIncident
from crmcore.models.users import ApiToken, Team, User, team_members, user_id_of

__all__ = [
    "ApiToken",
    "Contact",
    "ContactAddress",
    "ContactEmail",
    "ContactPhone",
    "ContactPhoto",
    "ContactWarning",
    "CustomFieldDefinition",
    "DuplicateDismissal",
    "HistoryEntry",
    "ImportBatch",
    "ImportBatchItem",
    "JSONType",
    "LookupValue",
    "Merge",
    "Message",
    "MessageTemplate",
    "Note",
    "NumberSequence",
    "PluginIncident",
    "SearchToken",
    "Tag",
    "Team",
    "User",
    "contact_owners",
    "contact_tags",
    "team_members",
    "user_id_of",
    "utcnow",
]
