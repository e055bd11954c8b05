"""Prompt-injection benchmark: refusals of legitimate text, attacks stopped and leaked (see __main__)."""
