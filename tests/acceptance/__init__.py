"""Acceptance checks run as commands, not collected by pytest: compose_check.py (`make compose-check`) runs the
containers for real and uses them as a user would."""
