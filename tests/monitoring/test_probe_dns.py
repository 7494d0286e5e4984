"""A name that does not resolve is a ``dns`` failure of the probe, never a crash.

The probe runs in a private mount namespace whose ``/etc/resolv.conf`` names a
nameserver on loopback where nothing listens: the resolver's question never leaves
the machine, and the name (under ``.test``, reserved by RFC 6761) is in no hosts file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.tools

NAME = "portal.webmg-probe.test"
PROBE = """
import json
import sys
from webmg_ops.config.contract import HealthCheck
from webmg_ops.monitoring.probe import probe

check = HealthCheck.model_validate({"name": "portal", "url": sys.argv[1]})
result = probe(check)
print(json.dumps({"up": result.up, "cause": result.cause, "detail": result.detail}))
"""


def test_a_name_that_does_not_resolve_is_a_dns_failure(tmp_path: Path) -> None:
    assert NAME not in Path("/etc/hosts").read_text()
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    done = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            'mount --bind "$1" /etc/resolv.conf && exec "$2" -c "$3" "$4"',
            "probe",
            str(resolv),
            sys.executable,
            PROBE,
            f"http://{NAME}/health",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    result = json.loads(done.stdout)
    assert result["up"] is False
    assert result["cause"] == "dns", result
    assert result["detail"]
