"""Imported by every Python process started with this folder on PYTHONPATH: when
WEBMG_TEST_HELD_CHECK is set, ``check`` runs the held playbook, so that a worker's run
(a process of its own) holds until it is stopped. The worker tests set both."""

import os

if os.environ.get("WEBMG_TEST_HELD_CHECK"):
    import pytest
    from support.engine import install_test_action

    install_test_action(pytest.MonkeyPatch(), "check", "hold_from_env.yml")
