from crmcore.cli import main

main()
