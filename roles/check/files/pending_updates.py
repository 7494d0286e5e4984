#!/usr/bin/python3
"""Print this host's pending package updates as JSON: security and other.

A package counts as a security update when any version newer than the
installed one comes from a security suite, even if a newer version from
another suite exists (apt's own upgrade would pick that newer one).
"""

import functools
import json

import apt_pkg

apt_pkg.init()
cache = apt_pkg.Cache(progress=None)
policy = apt_pkg.Policy(cache)
policy.init_defaults()
security, other = [], []
for package in cache.packages:
    installed = package.current_ver
    if installed is None:
        continue
    newer = [
        version
        for version in package.version_list
        if apt_pkg.version_compare(version.ver_str, installed.ver_str) > 0
    ]
    if not newer:
        continue
    from_security = any(
        "security" in (package_file.archive + package_file.label + package_file.codename).lower()
        for version in newer
        for package_file, _index in version.file_list
    )
    newest = max(
        newer, key=functools.cmp_to_key(lambda a, b: apt_pkg.version_compare(a.ver_str, b.ver_str))
    )
    entry = {"name": package.name, "installed": installed.ver_str, "available": newest.ver_str}
    (security if from_security else other).append(entry)
print(json.dumps({"security": security, "other": other}))
