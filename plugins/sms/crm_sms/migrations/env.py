from crmcore.plugin_api import run_migrations

run_migrations()
