"""default configurable lists: salutations, origins, roles, phone types

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

lookup_values = sa.table(
    "lookup_values",
    sa.column("list", sa.String), sa.column("key", sa.String), sa.column("label_en", sa.String),
    sa.column("label_fr", sa.String), sa.column("position", sa.Integer), sa.column("builtin", sa.Boolean),
)

DEFAULTS = {
    "salutation": [("mr", "Mr", "M."), ("mrs", "Mrs", "Mme"), ("ms", "Ms", "Mlle"), ("dr", "Dr", "Dr"),
                   ("prof", "Prof.", "Pr"), ("me", "Counsel", "Me")],
    "origin": [("website", "Website", "Site web"), ("web_form", "Web form", "Formulaire web"),
               ("referral", "Referral", "Recommandation"), ("trade_show", "Trade show", "Salon professionnel"),
               ("advertising", "Advertising", "Publicité"), ("cold_call", "Cold call", "Prospection téléphonique"),
               ("email_campaign", "Email campaign", "Campagne emailing"), ("social", "Social media", "Réseaux sociaux"),
               ("partner", "Partner", "Partenaire"), ("existing_customer", "Existing customer", "Client existant"),
               ("other", "Other", "Autre")],
    "role": [("decision_maker", "Decision maker", "Décideur"), ("purchasing", "Purchasing", "Achats"),
             ("technical", "Technical contact", "Contact technique"), ("billing", "Billing", "Facturation"),
             ("executive", "Executive", "Direction"), ("employee", "Employee", "Employé")],
    "phone_type": [("mobile", "Mobile", "Mobile"), ("work", "Work", "Travail"), ("home", "Home", "Domicile"),
                   ("fax", "Fax", "Fax")],
}


def upgrade():
    rows = []
    for list_name, values in DEFAULTS.items():
        for index, (key, label_en, label_fr) in enumerate(values):
            rows.append({"list": list_name, "key": key, "label_en": label_en, "label_fr": label_fr,
                         "position": (index + 1) * 10, "builtin": True})
    op.bulk_insert(lookup_values, rows)


def downgrade():
    op.execute(lookup_values.delete().where(lookup_values.c.builtin.is_(True)))
