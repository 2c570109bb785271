"""CLI layer: the only code that imports click. ``agentmem`` is :func:`agentmem.cli.main.main`."""
