"""Hardening: the control catalogue and the compliance checks that read hosts against it.

``controls`` is the one place where controls are defined; ``compliance``
checks each control on each host through testinfra's Ansible backend,
independently of the hardening role that remediates them.
"""
