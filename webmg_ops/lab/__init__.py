"""The rehearsal lab: real Debian hosts on this machine, reachable over real SSH.

One module per responsibility, from the machine up:

- ``environment``: root and the tools the lab drives; ``execute``: the one
  place that spawns processes.
- ``paths``: the lab directory and the build cache; ``state``: the record of
  every process, mount, link, namespace and cgroup the lab made.
- ``base``: the Debian root file system built once with mmdebstrap;
  ``layers``: what web, database and plain hosts add over it;
  ``demo_packages`` and ``demoapp/``: the demo packages; ``apt_repo``: the
  signed apt repository that serves them.
- ``network``: the lab's bridge in 198.18.0.0/24; ``cgroups``: a cgroup per
  host; ``mounts``: overlays and their safe removal; ``keys``: SSH keys and
  known_hosts; ``s3``: the S3 endpoint.
- ``topology``: which hosts the inventories name; ``hosts``: one host's
  overlay, boot and stop; ``supervise``: the per-host process that boots a
  host again after a reboot; ``control``: the ``lab`` commands.
"""
