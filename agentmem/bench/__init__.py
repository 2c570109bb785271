"""Benchmarks of agentmem, runnable with ``agentmem bench ...``."""
