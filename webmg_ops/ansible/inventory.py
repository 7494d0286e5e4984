"""Reading a client's Ansible inventory: which hosts, where, in which groups.

The inventory is parsed by Ansible itself (``InventoryManager`` and
``DataLoader``), so that what webmg-ops reads is what ``ansible-playbook``
will see. Variables are not templated: ``ansible_host``, ``ansible_port``
and ``ansible_user`` are read as written.

A client's folder is data, never code: only static YAML and INI inventories
are parsed (no inventory script, no plugin configuration), no file Ansible
reads from it may be executable, its variables may hold no Jinja template
(a ``lookup('pipe', ...)`` would run on the controller) and none of the
connection variables that decide how the controller trusts and reaches a
host (:data:`REFUSED_VARIABLES`), and its ``ansible.cfg`` may only tune
speed (:data:`CLIENT_CFG_OPTIONS`). The engine sets the trust settings
itself (:mod:`webmg_ops.ansible.connection`).
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webmg_ops.ansible.vault import Vault
from webmg_ops.errors import BadInput
from webmg_ops.yamlsource import SourceProblem

#: The file names tried, in this order, in a client's folder.
INVENTORY_FILE_NAMES = ("hosts.yml", "hosts.yaml", "hosts.ini", "hosts")
#: The rehearsal lab's range (198.18.0.0/15 is reserved for test networks).
LAB_NETWORK = ipaddress.IPv4Network("198.18.0.0/24")
#: Groups every host belongs to implicitly; not reported.
IMPLICIT_GROUPS = frozenset({"all", "ungrouped"})
DEFAULT_SSH_PORT = 22

#: The only inventory plugins that read a client's inventory: static files. Ansible's
#: ``script`` plugin would run an executable ``hosts.yml`` and ``auto`` would load
#: whichever plugin a YAML file names.
STATIC_INVENTORY_PLUGINS = ("yaml", "ini")
#: The folders of a client whose files Ansible reads as variables.
VARIABLE_FOLDERS = ("group_vars", "host_vars")
#: The file endings Ansible reads in those folders (its ``host_group_vars`` plugin).
VARIABLE_FILE_SUFFIXES = frozenset({"", ".yml", ".yaml", ".json"})
#: A client's own Ansible settings, next to its inventory.
CLIENT_ANSIBLE_CFG = "ansible.cfg"

_SSH_OPTIONS = (
    "adds OpenSSH options after the engine's: a ProxyCommand runs on the controller, "
    "turning StrictHostKeyChecking off, another known_hosts or -F weaken host-key checking"
)
_PROGRAM = "names the program the controller runs in place of OpenSSH"
_HOST_KEYS = "turns host-key checking off"
_KEY_FILE = (
    "the engine offers the client's own key (ssh/id_ed25519) alone; "
    "another path could be another client's key"
)
_KEY_TEXT = "loads a key into an SSH agent; the engine offers the client's own key alone"
_CONTROL = "could share another run's SSH connection, to another client's host"
_ON_CONTROLLER = (
    "also applies to tasks delegated to the controller: a program or option of the "
    "client's choosing would run there"
)
_ALIAS = (
    "an alias the orchestrator's own checks (preflight, enrolment) do not read: "
    "write ansible_host, ansible_port or ansible_user"
)
_MAGIC = "set by Ansible itself; another value would point the roles at another client's files"
_TARGET = (
    "a setting of the agency's backup target, which every client shares: the target and "
    "the keys pinned for it are the agency's alone, never a client's"
)
_CONTROLLER_PATH = (
    "a file on the controller that the backup role reads in a task delegated there, "
    "derived from the client's folder; another path could be another client's file"
)

#: Variables a client's inventory may never set, with the reason each is refused. They
#: decide how the controller reaches and trusts a host, or what it runs locally; the
#: engine sets the trust settings itself, and inventory variables would beat them.
REFUSED_VARIABLES: Mapping[str, str] = {
    "ansible_ssh_args": "replaces the engine's OpenSSH options (strict host keys, "
    "the client's known_hosts, IdentitiesOnly)",
    "ansible_ssh_common_args": _SSH_OPTIONS,
    "ansible_ssh_extra_args": _SSH_OPTIONS,
    "ansible_scp_extra_args": _SSH_OPTIONS,
    "ansible_sftp_extra_args": _SSH_OPTIONS,
    "ansible_ssh_executable": _PROGRAM,
    "ansible_scp_executable": _PROGRAM,
    "ansible_sftp_executable": _PROGRAM,
    "ansible_host_key_checking": _HOST_KEYS,
    "ansible_ssh_host_key_checking": _HOST_KEYS,
    "ansible_ssh_private_key_file": _KEY_FILE,
    "ansible_private_key_file": _KEY_FILE,
    "ansible_ssh_private_key": _KEY_TEXT,
    "ansible_private_key": _KEY_TEXT,
    "ansible_ssh_pkcs11_provider": "loads a shared library of the client's choosing into "
    "OpenSSH on the controller",
    "ansible_control_path": _CONTROL,
    "ansible_control_path_dir": _CONTROL,
    "ansible_shell_executable": _ON_CONTROLLER,
    "ansible_become_exe": _ON_CONTROLLER,
    "ansible_become_flags": _ON_CONTROLLER,
    "ansible_ssh_host": _ALIAS,
    "ansible_ssh_port": _ALIAS,
    "ansible_ssh_user": _ALIAS,
    "inventory_dir": _MAGIC,
    "inventory_file": _MAGIC,
    "playbook_dir": _MAGIC,
    "role_path": _MAGIC,
    "backup_controller_key_file": _CONTROLLER_PATH,
    "backup_controller_known_hosts": _CONTROLLER_PATH,
    "backup_client": _TARGET,
    "backup_repository": _TARGET,
}
#: Name prefixes refused, with the reason.
REFUSED_PREFIXES: Mapping[str, str] = {
    "ansible_paramiko_": "a paramiko setting (its own host-key policy, proxy command and "
    "key search); hosts are reached over OpenSSH only",
    "backup_target_": _TARGET,
    # Read by Mitogen's strategy: mitogen_via routes a host's connection through another
    # host (another client's), others choose the connection kind or its options.
    "mitogen_": "a Mitogen setting (mitogen_via would route the connection through "
    "another host); how hosts are reached is the engine's",
    "ansible_mitogen_": "a Mitogen setting; how hosts are reached is the engine's",
}
#: The connection plugins a client may name: OpenSSH, with the engine's trust settings.
ALLOWED_CONNECTIONS = frozenset({"ssh", "ansible.builtin.ssh"})
#: What an interpreter variable (``ansible_python_interpreter``) may name: Python 3 in a
#: standard place, since it also runs on the controller for delegated tasks.
ALLOWED_INTERPRETER = re.compile(r"/usr(/local)?/bin/python3(\.[0-9]+)?")
#: Jinja templating (a ``lookup('pipe', ...)`` runs on the controller), and the calls
#: that reach lookup plugins from an expression.
TEMPLATING = re.compile(r"\{\{|\{%|\{#|\b(lookup|query|q)\s*\(")
#: OpenSSH options that run a command on the controller or choose which host keys are
#: trusted: refused in any value, wherever it would end up.
SSH_TRUST_OPTIONS = re.compile(
    r"\b(ProxyCommand|ProxyJump|LocalCommand|PermitLocalCommand|KnownHostsCommand|"
    r"PKCS11Provider|SecurityKeyProvider|StrictHostKeyChecking|UserKnownHostsFile|"
    r"GlobalKnownHostsFile)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class InventoryHost:
    """One host of a client's inventory, as Ansible will connect to it."""

    name: str
    address: str
    port: int
    user: str | None
    groups: tuple[str, ...]


def find_inventory_file(client_dir: Path) -> Path:
    """Given a client's folder, return its inventory file.

    Raise ``BadInput`` if it has none.
    """
    for name in INVENTORY_FILE_NAMES:
        candidate = client_dir / name
        if candidate.is_file():
            return candidate
    tried = ", ".join(INVENTORY_FILE_NAMES)
    raise BadInput(f"{client_dir}: no inventory file (looked for {tried})")


def _port(value: object, host: str, path: Path) -> int:
    if value is None:
        return DEFAULT_SSH_PORT
    try:
        port = int(str(value))
    except ValueError:
        raise BadInput(f"{path}: host {host}: ansible_port {value!r} is not a number") from None
    if not 0 < port < 65536:
        raise BadInput(f"{path}: host {host}: ansible_port {port} is out of range")
    return port


def _first_warning(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("[WARNING]:"):
            return line.removeprefix("[WARNING]:").strip()
    return "neither YAML nor INI that Ansible can read"


def read_inventory_hosts(client_dir: Path) -> list[InventoryHost]:
    """Given a client's folder, return the hosts of its inventory, sorted by name.

    Reads ``hosts.yml``, ``hosts.yaml``, ``hosts.ini`` or ``hosts`` (YAML or
    INI) with Ansible's own parser. Raise ``BadInput`` naming the file if it
    is missing or cannot be parsed.
    """
    path = find_inventory_file(client_dir)
    # Ansible is imported here: it is slow to import and most commands need none of it.
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    _static_plugins_only()
    manager = InventoryManager(loader=DataLoader(), sources=[], parse=False)
    # Ansible reports parse failures as warnings on stderr; they become one clear error.
    warnings = io.StringIO()
    try:
        with contextlib.redirect_stderr(warnings):
            parsed = manager.parse_source(str(path.absolute()))
    except AnsibleError as error:
        raise BadInput(f"{path}: not a valid inventory: {error}") from error
    if not parsed:
        raise BadInput(f"{path}: not a valid inventory: {_first_warning(warnings.getvalue())}")
    manager.reconcile_inventory()
    hosts = []
    for host in manager.get_hosts():
        variables = host.get_vars()
        name = str(host.get_name())
        address = variables.get("ansible_host") or name
        user = variables.get("ansible_user")
        groups = sorted(
            str(group.get_name())
            for group in host.get_groups()
            if group.get_name() not in IMPLICIT_GROUPS
        )
        hosts.append(
            InventoryHost(
                name=name,
                address=str(address),
                port=_port(variables.get("ansible_port"), name, path),
                user=None if user is None else str(user),
                groups=tuple(groups),
            )
        )
    return sorted(hosts, key=lambda host: host.name)


def is_lab_address(address: str) -> bool:
    """Given a host address, return whether it lies in the rehearsal lab's range."""
    try:
        return ipaddress.ip_address(address) in LAB_NETWORK
    except ValueError:
        return False


# --- a client's folder is data, not code ----------------------------------


def static_inventory(source: Path, loader: Any) -> Any:
    """Given an inventory file and an Ansible ``DataLoader``, return the parsed
    ``InventoryManager``, read by the static YAML and INI plugins only.

    Ansible reads the plugins it may use from a setting taken once, when it is
    first imported: it is narrowed here for this process, so that no caller can
    run an inventory script.
    """
    from ansible.inventory.manager import InventoryManager

    _static_plugins_only()
    return InventoryManager(loader=loader, sources=[str(source)])


def hosts_matching(client_dir: Path, pattern: str) -> tuple[str, ...]:
    """Given a client folder and an Ansible host pattern (``--limit``), return the names of
    the hosts it matches, sorted (none: an empty tuple).
    """
    from ansible.parsing.dataloader import DataLoader

    inventory = static_inventory(find_inventory_file(client_dir), DataLoader())
    return tuple(sorted(str(host.name) for host in inventory.get_hosts(pattern=pattern)))


def inventory_order(client_dir: Path, hosts: Iterable[str]) -> tuple[str, ...]:
    """Given a client folder and some of its hosts, return them in inventory order
    (Ansible's play order).
    """
    from ansible.parsing.dataloader import DataLoader

    wanted = set(hosts)
    inventory = static_inventory(find_inventory_file(client_dir), DataLoader())
    return tuple(
        str(host.name) for host in inventory.get_hosts(pattern="all") if host.name in wanted
    )


def _static_plugins_only() -> None:
    import ansible.constants

    ansible.constants.INVENTORY_ENABLED = list(STATIC_INVENTORY_PLUGINS)


def _origin(value: Any, default: Path) -> tuple[Path, int]:
    """Given a value Ansible loaded, return the file and line it was written at."""
    from ansible._internal._datatag._tags import Origin

    origin = Origin.get_tag(value)
    if origin is None or origin.path is None:
        return default, 1
    return Path(origin.path), int(origin.line_num or 1)


def _texts(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Yield (field path, item) for every key and scalar within a variable's value."""
    from ansible.parsing.vault import EncryptedString

    if isinstance(value, EncryptedString):
        return  # checked once decrypted, with the engine's vault password
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield path, key
            yield from _texts(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _texts(item, f"{path}[{index}]")
    elif value is not None:
        yield path, value


def _name_problem(name: str, value: Any) -> str | None:
    """Given a variable's name and value, return why a client may not set it (None if it may)."""
    if name in REFUSED_VARIABLES:
        return f"refused in a client's inventory: {REFUSED_VARIABLES[name]}"
    for prefix, reason in REFUSED_PREFIXES.items():
        if name.startswith(prefix):
            return f"refused in a client's inventory: {reason}"
    from ansible.parsing.vault import EncryptedString

    if isinstance(value, EncryptedString):
        return None  # its value is checked once decrypted, with the engine's vault password
    if name == "ansible_connection" and str(value) not in ALLOWED_CONNECTIONS:
        return "refused: hosts are reached over ssh only, with the engine's host-key checking"
    interpreter = name.startswith("ansible_") and name.endswith("_interpreter")
    if interpreter and not ALLOWED_INTERPRETER.fullmatch(str(value)):
        return (
            "refused: an interpreter must be /usr/bin/python3 or /usr/local/bin/python3[.N] "
            "(it also runs on the controller for delegated tasks)"
        )
    return None


def variable_problems(name: str, value: Any, file: Path, line: int) -> list[SourceProblem]:
    """Given a client's variable, its value and where it was written, return what is refused
    in it: a refused name, Jinja templating or an OpenSSH trust option in any key or value.

    Values are never quoted: they may be secrets.
    """
    problems = []
    refused = _name_problem(str(name), value)
    if refused:
        problems.append(SourceProblem(file, line, str(name), refused))
    for path, item in _texts(value, str(name)):
        if not isinstance(item, str):
            continue
        item_file, item_line = _origin(item, file)
        if item_line == 1 and item_file == file:
            item_line = line
        if TEMPLATING.search(item):
            problems.append(
                SourceProblem(
                    item_file,
                    item_line,
                    path,
                    "Jinja templating is refused in a client's variables "
                    "(a lookup would run on the controller): write the value itself",
                )
            )
        elif SSH_TRUST_OPTIONS.search(item):
            problems.append(
                SourceProblem(
                    item_file,
                    item_line,
                    path,
                    "an OpenSSH option that runs a command or chooses trusted host keys "
                    "is refused in a client's variables",
                )
            )
    return problems


def _mapping_problems(data: Any, file: Path) -> list[SourceProblem]:
    problems = []
    for name, value in data.items():
        name_file, line = _origin(name, file)
        problems.extend(variable_problems(str(name), value, name_file, line))
    return problems


def _code_problem(path: Path) -> SourceProblem | None:
    """Given a file Ansible reads from a client's folder, return why it is refused (or None)."""
    if path.is_symlink():
        return SourceProblem(
            path, 1, "", "a symbolic link is refused: it may point outside the client's folder"
        )
    if path.is_file() and path.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
        return SourceProblem(
            path,
            1,
            "",
            "an executable file is refused: Ansible would run it as an inventory script "
            "(chmod a-x it; a client's inventory is static YAML or INI)",
        )
    return None


def _variable_files(client_dir: Path) -> Iterator[Path]:
    """Yield every entry of the client's variable folders (files, links and folders)."""
    for folder in VARIABLE_FOLDERS:
        base = client_dir / folder
        if base.is_symlink():
            yield base
        elif base.is_dir():
            yield from sorted(base.rglob("*"))


def _is_vault_file(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(64).lstrip().startswith(b"$ANSIBLE_VAULT")


def _variable_file_problems(path: Path, loader: Any) -> list[SourceProblem]:
    from ansible.errors import AnsibleError

    if path.suffix not in VARIABLE_FILE_SUFFIXES or path.name.startswith("."):
        return []
    if _is_vault_file(path):
        return []  # checked once decrypted, with the engine's vault password
    try:
        data = loader.load_from_file(str(path))
    except AnsibleError as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return [SourceProblem(path, 1, "", f"not valid YAML: {first}")]
    if data is None:
        return []
    if not isinstance(data, Mapping):
        return [SourceProblem(path, 1, "", "variables are a YAML mapping of names to values")]
    return _mapping_problems(data, path)


def _inventory_variable_problems(path: Path, loader: Any) -> list[SourceProblem]:
    """Given the inventory file, return what is refused in the variables it sets."""
    from ansible.errors import AnsibleError

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            manager = static_inventory(path, loader)
    except AnsibleError:
        return []  # reported by read_inventory_hosts
    problems = []
    for group in manager.groups.values():
        problems.extend(_mapping_problems(group.vars, path))
    for host in manager.hosts.values():
        # The plugin sets inventory_dir and inventory_file itself: values without an origin.
        for name, value in host.vars.items():
            written = _origin(value, path)
            if name in ("inventory_dir", "inventory_file") and written == (path, 1):
                continue
            problems.extend(variable_problems(str(name), value, *written))
    return problems


def client_folder_problems(client_dir: Path) -> list[SourceProblem]:
    """Given a client folder, return every way it would make Ansible run code or weaken
    host-key checking on the controller: executable or linked inventory and variable
    files, refused or templated variables, and ``ansible.cfg`` settings beyond speed.

    Vault-encrypted values are checked by :func:`vault_problems`, with the password.
    """
    from ansible.parsing.dataloader import DataLoader

    problems = []
    candidates = [client_dir / name for name in INVENTORY_FILE_NAMES]
    cfg = client_dir / CLIENT_ANSIBLE_CFG
    for entry in (*candidates, *_variable_files(client_dir)):
        problem = _code_problem(entry)
        if problem is not None:
            problems.append(problem)
    if cfg.is_symlink():
        problems.append(
            SourceProblem(cfg, 1, "", "a symbolic link is refused: it may point outside the folder")
        )
    if problems:
        return problems  # nothing of it is parsed
    loader = DataLoader()
    inventory = next((path for path in candidates if path.is_file()), None)
    if inventory is not None:
        problems.extend(_inventory_variable_problems(inventory, loader))
    for entry in _variable_files(client_dir):
        if entry.is_file():
            problems.extend(_variable_file_problems(entry, loader))
    if cfg.is_file():
        problems.extend(client_cfg_problems(cfg))
    return problems


def vault_problems(client_dir: Path, vault: Vault) -> list[SourceProblem]:
    """Given a client folder and the command's vault, return what is refused in its
    vault-encrypted variables (the same rules as the others). Their content is never shown.

    Raise BadInput if something is encrypted and the password is missing or wrong.
    """
    problems = []
    for name, value in vault.variables(client_dir).items():
        for problem in variable_problems(name, value, client_dir, 1):
            where = problem.field or name
            problems.append(
                SourceProblem(
                    client_dir,
                    1,
                    f"{where} (vault-encrypted)",
                    problem.message + "; a vault value must be a plain value",
                )
            )
    return problems


# --- a client's ansible.cfg tunes speed, not trust ---------------------------

_TRUE_FALSE = frozenset({"true", "false", "yes", "no", "on", "off", "1", "0", "y", "n"})


def _integer(low: int, high: int) -> Callable[[str], str | None]:
    def check(text: str) -> str | None:
        if not text.isdigit() or not low <= int(text) <= high:
            return f"must be a whole number from {low} to {high}"
        return None

    return check


def _choice(*allowed: str) -> Callable[[str], str | None]:
    def check(text: str) -> str | None:
        return None if text in allowed else f"must be one of {', '.join(allowed)}"

    return check


def _boolean(text: str) -> str | None:
    return None if text.lower() in _TRUE_FALSE else "must be true or false"


#: What a client's ansible.cfg may set: (section, option) -> check of the value. Only
#: speed; trust (host keys, ssh options, keys, plugins, paths) is the engine's.
CLIENT_CFG_OPTIONS: Mapping[tuple[str, str], Callable[[str], str | None]] = {
    ("defaults", "forks"): _integer(1, 500),
    ("defaults", "timeout"): _integer(1, 3600),
    ("defaults", "gathering"): _choice("smart", "implicit", "explicit"),
    ("defaults", "gather_timeout"): _integer(1, 3600),
    ("defaults", "fact_caching"): _choice("jsonfile", "memory"),
    ("defaults", "fact_caching_timeout"): _integer(0, 31_536_000),
    ("defaults", "poll_interval"): _integer(1, 60),
    # Mitogen's strategy (opt-in, see webmg_ops.ansible.strategy); the plugins' folder
    # stays the engine's.
    ("defaults", "strategy"): _choice("linear", "mitogen_linear"),
    ("ssh_connection", "pipelining"): _boolean,
    ("ssh_connection", "retries"): _integer(0, 10),
    ("connection", "pipelining"): _boolean,
    ("persistent_connection", "connect_timeout"): _integer(1, 3600),
    ("persistent_connection", "command_timeout"): _integer(1, 3600),
}

_SECTION = re.compile(r"\[(?P<name>[^\]]+)\]\s*")
_OPTION = re.compile(r"(?P<key>[^=:\s][^=:]*?)\s*[=:]\s*(?P<value>.*)")


def _cfg_line_problem(section: str | None, line: str) -> str | None:
    """Given the current section and one line of an ansible.cfg, return why it is refused."""
    if line[:1].isspace():
        return "a continued value is refused"
    found = _OPTION.fullmatch(line)
    if found is None:
        return "not an option line (option = value)"
    key = found["key"].strip().lower()
    value = found["value"].split(" ;", 1)[0].strip()
    check = CLIENT_CFG_OPTIONS.get((section or "", key))
    if check is None:
        allowed = ", ".join(f"[{s}] {o}" for s, o in CLIENT_CFG_OPTIONS)
        return (
            f"[{section}] {key} is refused: a client's ansible.cfg may only tune speed "
            f"({allowed}); trust settings are the engine's"
        )
    wrong = check(value)
    return f"[{section}] {key} {wrong}" if wrong else None


def client_cfg_problems(path: Path) -> list[SourceProblem]:
    """Given a client's ansible.cfg, return each line that sets more than speed."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        return [SourceProblem(path, 1, "", f"cannot read: {error}")]
    problems = []
    section: str | None = None
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip()[:1] in ("#", ";"):
            continue
        header = _SECTION.fullmatch(line.strip())
        if header is not None and not line[:1].isspace():
            section = header["name"].strip()
            continue
        problem = _cfg_line_problem(section, line)
        if problem is not None:
            problems.append(SourceProblem(path, number, "", problem))
    return problems
