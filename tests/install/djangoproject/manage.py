#!/usr/bin/env python3
"""manage.py of a Django project as an operator has it after installing the
snapshot package: nothing on sys.path but the project and Debian's python3
path, where the package put snapshot_django."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
