"""The fault harness and checker (issue 13): ``python -m tests.chaos --seed N``.

``schedule`` plans a seeded, bounded schedule of faults (pure, printable, parseable);
``checker`` judges what every destination holds against what the rules imply (pure),
and reads it (read_committed); ``harness`` runs the producers, routers and audit service,
applies the schedule with signals and prints the checker's report. See RELIABILITY.md.
"""
