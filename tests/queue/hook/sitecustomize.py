"""Imported by every Python process started with this folder on PYTHONPATH: in a
``webmg-ops run`` process, when WEBMG_TEST_HELD_CHECK is set, ``check`` runs the held
playbook, so that a worker's run (a process of its own) holds until it is stopped. The
worker tests set both. Every other process (the worker, Ansible's) is left as it is."""

import os
import sys
from pathlib import Path

_ARGV = getattr(sys, "argv", [])
if (
    os.environ.get("WEBMG_TEST_HELD_CHECK")
    and _ARGV
    and Path(_ARGV[0]).name == "webmg-ops"
    and "run" in _ARGV[1:]
):
    import pytest
    from support.engine import install_test_action

    install_test_action(pytest.MonkeyPatch(), "check", "hold_from_env.yml")
