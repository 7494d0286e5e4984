"""Scoping a prospective client: fit or not, the level to recommend, an action plan."""
