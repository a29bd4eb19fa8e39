"""The top layer of the project (see apps.py)."""
