"""The one room for SSH from the controller (paramiko, fabric): host keys always verified.

``ssh`` reads and enrols host keys and opens sessions that refuse an
unknown or changed key; ``session`` runs ad-hoc commands on hosts through
fabric with the same checks.
"""
