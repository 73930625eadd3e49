from crmcore.migrating import run_env

run_env()
