"""``python -m services`` runs the ``liaison`` command line."""

from services.cli import main

main()
