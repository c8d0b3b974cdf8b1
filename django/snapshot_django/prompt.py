"""The y/n question the commands ask before they change the database."""
import sys

from django.core.management.base import CommandError


def confirm(stdout, question, refusal):
    """Asks `question`; anything but y/yes raises CommandError(refusal)."""
    stdout.write(f"{question}: ", ending="")
    stdout.flush()
    try:
        answer = input()
    except EOFError:
        answer = ""
    if not sys.stdin.isatty():
        stdout.write("")  # the answer was not echoed
    if answer.strip().lower() not in ("y", "yes"):
        raise CommandError(refusal)
