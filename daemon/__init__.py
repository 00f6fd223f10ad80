"""Running Tandem's three processes as system services: the systemd notification
protocol (readiness, status, watchdog, stopping) and the one-command installer.

A library like ``inference`` and ``link``: it imports no process; each process hands it
what to report (``daemon.service``) or what to install (``daemon.install``).
"""
