"""``python -m agentmem.cli`` runs the CLI."""

from agentmem.cli.main import main

main()
