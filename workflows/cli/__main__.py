from edgefed.workflows.cli.app import main

main()
