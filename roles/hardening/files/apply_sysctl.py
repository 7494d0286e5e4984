"""Apply sysctl settings where /proc/sys is writable; say which are read-only.

Usage: apply_sysctl.py JSON-SETTINGS apply|check. Prints JSON
{"changed": [...], "read_only": [...], "missing": [...]}.
"""

import json
import os
import sys


def main():
    settings = json.loads(sys.argv[1])
    apply = sys.argv[2] == "apply"
    report = {"changed": [], "read_only": [], "missing": []}
    for key, value in sorted(settings.items()):
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            with open(path) as handle:
                current = handle.read().split()
        except FileNotFoundError:
            report["missing"].append(key)
            continue
        if current == str(value).split():
            continue
        if not os.access(path, os.W_OK):
            report["read_only"].append(key)
            continue
        if apply:
            try:
                with open(path, "w") as handle:
                    handle.write(str(value))
            except OSError:
                report["read_only"].append(key)
                continue
        report["changed"].append(key)
    print(json.dumps(report))


main()
