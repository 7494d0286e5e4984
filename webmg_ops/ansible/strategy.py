"""Which Ansible strategy a run's plays use: Ansible's own, or Mitogen's as an option.

Ansible's ``linear`` strategy is the default. Mitogen's ``mitogen_linear`` keeps
one Python interpreter per host for the whole play instead of starting one per
task, which cuts the per-task cost; it is opt-in, because it widens what a
host can send to the controller (Mitogen's own message protocol, answered by a
process of the controller, rather than one JSON document per task) and because
ansible-core 2.19 deprecates third-party strategy plugins.

The strategy in force is, in order: ``WEBMG_ANSIBLE_STRATEGY`` (the switch for a
whole controller, and CI's), the ``strategy`` of the ansible.cfg the run uses (a
client's own, or the project's), else ``linear``. Where the strategy's plugins
live is the engine's to say: no ansible.cfg may name a plugin folder.
"""

from __future__ import annotations

import configparser
import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path

from webmg_ops.errors import EnvironmentProblem

#: The environment variable that chooses the strategy for every run of this controller.
STRATEGY_VARIABLE = "WEBMG_ANSIBLE_STRATEGY"
DEFAULT_STRATEGY = "linear"
MITOGEN_STRATEGY = "mitogen_linear"
#: The strategies a run may use. Both keep the plays' order (every host finishes a task
#: before any starts the next): the roles' guards and the backup target rely on it.
STRATEGIES = (DEFAULT_STRATEGY, MITOGEN_STRATEGY)


def configured_strategy(ansible_cfg: Path) -> str | None:
    """Given an ansible.cfg, return the ``strategy`` of its ``[defaults]`` (None if unset).

    An unreadable file counts as unset: the run's own reading of it reports the problem.
    """
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(ansible_cfg, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return None
    value = parser.get("defaults", "strategy", fallback="").strip()
    return value or None


def strategy_in_force(ansible_cfg: Path, environ: Mapping[str, str] | None = None) -> str:
    """Given the ansible.cfg a run uses (and the environment, default ``os.environ``),
    return the strategy its plays use.

    Raise EnvironmentProblem, naming the source and the strategies allowed, if the
    environment variable or the file names another strategy.
    """
    environ = os.environ if environ is None else environ
    chosen = environ.get(STRATEGY_VARIABLE, "").strip()
    source = STRATEGY_VARIABLE
    if not chosen:
        chosen = configured_strategy(ansible_cfg) or DEFAULT_STRATEGY
        source = f"strategy in {ansible_cfg}"
    if chosen not in STRATEGIES:
        raise EnvironmentProblem(
            f"{source} is {chosen!r}: the strategy must be one of {', '.join(STRATEGIES)}"
        )
    return chosen


def mitogen_strategy_folder() -> Path:
    """Return the folder of Mitogen's strategy plugins, from the installed package.

    Raise EnvironmentProblem if Mitogen is not installed.
    """
    spec = importlib.util.find_spec("ansible_mitogen")
    if spec is None or spec.origin is None:
        raise EnvironmentProblem(
            f"strategy {MITOGEN_STRATEGY} needs the mitogen package, which is not installed "
            "(make setup installs it)"
        )
    return Path(spec.origin).parent / "plugins" / "strategy"


def usable_strategy(ansible_cfg: Path, environ: Mapping[str, str] | None = None) -> str:
    """Given the ansible.cfg a run uses (and the environment), return the strategy in
    force once it is known to be usable: the engine asks before it writes anything.

    Raise EnvironmentProblem if the strategy is not allowed, or is Mitogen's and Mitogen
    is not installed.
    """
    strategy = strategy_in_force(ansible_cfg, environ)
    if strategy == MITOGEN_STRATEGY:
        mitogen_strategy_folder()
    return strategy


def strategy_environment(
    ansible_cfg: Path, private_folder: Path, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Given the ansible.cfg a run uses, a folder private to the run (and the
    environment), return the environment that makes Ansible use the strategy in force.

    For Mitogen, its plugins' folder, and ``TMPDIR`` set to the private folder:
    Mitogen's connection process listens on a socket made in the temporary
    folder, and a shared one would let another local user race for its name.
    Raise EnvironmentProblem as :func:`usable_strategy` does.
    """
    strategy = strategy_in_force(ansible_cfg, environ)
    environment = {"ANSIBLE_STRATEGY": strategy}
    if strategy == MITOGEN_STRATEGY:
        environment["ANSIBLE_STRATEGY_PLUGINS"] = str(mitogen_strategy_folder())
        environment["TMPDIR"] = str(private_folder)
    return environment
