"""The one adapter for Ansible and ansible-runner.

``runner`` runs a playbook through ansible-runner and turns its events into
masked results; ``inventory`` reads a client's inventory folder and refuses
what would run code or weaken trust; ``connection`` gives each host's
connection settings and the trust environment every Ansible process gets
last; ``vault`` decrypts a client's vault; ``revision`` names the checkout's
revision of the playbooks and roles. They work on paths and plain
data and return results; they never record.
"""
