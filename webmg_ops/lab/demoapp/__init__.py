"""Sources of the demo packages served by the lab's apt repository.

``app.py`` is the demo booking site (python3 standard library only, run by
systemd on the web hosts); the other files are its unit, its maintainer
scripts, a small tools package and the database host's seed. They are data:
:mod:`webmg_ops.lab.demo_packages` builds them into ``.deb`` files.
"""
