"""Availability monitoring: probes of the contracts' health checks, samples, detection,
metrics."""
