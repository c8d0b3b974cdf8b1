#!/usr/bin/python3
"""The e2e test project's manage.py (Debian's python3: it can load SQLite extensions)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# The snapshot_django package, from this repository (no install needed).
sys.path[:0] = [HERE, os.path.join(HERE, "..", "..", "django")]

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "e2eproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
