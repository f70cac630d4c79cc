"""Subcommands of the spikeboard CLI, one module each (see cli.py)."""
