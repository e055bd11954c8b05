"""Channels and the `bot` command line (runs in the Rasa env)."""
