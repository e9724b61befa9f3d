"""The clients a receiver serves: resolved from its mapping files, reloaded without a restart.

The receiver is given mapping sources: files, folders (their ``*.yaml``) or glob patterns. Each
file is loaded on its own into either a `ClientEndpoint` (served) or a one-line reason (not
served: the mapping does not load or validate, or its webhook secret cannot be resolved). One
file's problem never touches another client. The result is an immutable `Snapshot`; a reload
builds a new one and swaps it in with one assignment, so a request sees one whole snapshot or the
next, never half of each, and requests never wait for a reload.

Two things reload:

- ``SIGHUP`` (``stokline receiver`` installs the handler): every file is loaded and every secret
  resolved again, e.g. after a secret was rotated in a Prefect Secret block.
- A request the current snapshot cannot serve (an unknown client, a client not served, a wrong
  signature) first checks the files, at most once per ``recheck`` seconds: the sources are listed
  and each file's ``stat`` compared with the one it was loaded at; new and changed files, and
  those that failed last time, are loaded again, the others kept as they are. A mapping added to
  a folder is so served from its first delivery on. A valid delivery to a served client touches
  no file, so a removed mapping's client answers 404 after the next reload or check.

A client whose file stops loading is not served (503 with the reason) rather than served from an
outdated mapping. Two files naming the same client: it stays with the file that served it (or the
first by name), and the other file is reported as ignored. A secret read from the environment is
read from the receiver's own, which a running process cannot gain: setting one needs a restart.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping as ReadOnly

    from stokline.config import Mapping

log = logging.getLogger("stokline.webhooks")

Stamp = tuple[int, int, int, int]


@dataclass(frozen=True)
class ClientEndpoint:
    """What the receiver needs of one client: its webhook secret and who owns poison messages."""

    client: str
    webhook_secret: str = field(repr=False)
    poison_team: str = "operations"


def endpoint_of(mapping: Mapping) -> ClientEndpoint:
    """The client's endpoint; resolves its webhook secret (raises SecretUnavailable if unset)."""
    return ClientEndpoint(
        client=mapping.client.name,
        webhook_secret=mapping.connections.shopline.webhook_secret.resolve().get_secret_value(),
        poison_team=mapping.operating_model.owner_of("poison_message"),
    )


@dataclass(frozen=True)
class Loaded:
    """One mapping file as last loaded: the client it names and its endpoint, or why not."""

    path: str
    stamp: Stamp | None
    client: str
    endpoint: ClientEndpoint | None = None
    reason: str | None = None


def _frozen(items: Iterable[tuple]) -> MappingProxyType:
    return MappingProxyType(dict(items))


@dataclass(frozen=True)
class Snapshot:
    """Who is served, who is not and why; never changed once built."""

    served: ReadOnly[str, ClientEndpoint] = field(default_factory=lambda: _frozen(()))
    not_served: ReadOnly[str, str] = field(default_factory=lambda: _frozen(()))
    ignored: tuple[str, ...] = ()
    files: ReadOnly[str, Loaded] = field(default_factory=lambda: _frozen(()))
    owners: ReadOnly[str, str] = field(default_factory=lambda: _frozen(()))  # client → path

    def health(self) -> dict[str, object]:
        answer: dict[str, object] = {
            "status": "ok",
            "clients": sorted(self.served),
            "not_served": dict(sorted(self.not_served.items())),
        }
        if self.ignored:
            answer["ignored"] = list(self.ignored)
        return answer


def _stamp(path: str) -> Stamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


def _name_in(path: str) -> str | None:
    """The client name a file that does not validate still gives, if it gives one."""
    import yaml

    try:
        name = yaml.safe_load(Path(path).read_text(encoding="utf-8"))["client"]["name"]
    except Exception:
        return None
    return name if isinstance(name, str) and name.strip() else None


def load(path: str, previous: Loaded | None = None) -> Loaded:
    """One file loaded into what the receiver needs of it; never raises."""
    from stokline.config import SecretUnavailable, check_file

    stamp = _stamp(path)  # before reading: a write after it shows as a change next time
    try:
        result = check_file(path)
    except Exception as exc:  # a checker's own failure still concerns only this file
        result, crash = None, type(exc).__name__
    else:
        crash = None
    if result is None or result.mapping is None:
        name = (previous.client if previous else None) or _name_in(path) or Path(path).stem
        if crash:
            reason = f"its mapping {path} could not be checked ({crash})"
        else:
            first = min(result.problems)
            reason = (
                f"its mapping {path} does not validate ({len(result.problems)} problem(s), the "
                f"first at line {first.line}, {first.pointer}; `stokline validate {path}` "
                "lists them)"
            )
        return Loaded(path, stamp, name, reason=reason)
    mapping = result.mapping
    try:
        return Loaded(path, stamp, mapping.client.name, endpoint=endpoint_of(mapping))
    except SecretUnavailable as exc:  # names the reference, never a value
        return Loaded(path, stamp, mapping.client.name, reason=str(exc))
    except Exception as exc:  # e.g. Prefect not reachable for a Secret block
        reason = f"its webhook secret could not be read ({type(exc).__name__})"
        return Loaded(path, stamp, mapping.client.name, reason=reason)


class Clients:
    """The receiver's clients: a `Snapshot` read without a lock, rebuilt from ``sources``."""

    def __init__(self, sources: Sequence[str | Path] = (), *, recheck: float = 1.0):
        self._sources = [str(s) for s in sources]
        self._recheck = recheck
        self._checked = -1e9
        self._lock = threading.Lock()
        self._snapshot = Snapshot()

    @classmethod
    def fixed(cls, endpoints: dict[str, ClientEndpoint]) -> Clients:
        """Exactly these clients, read from no file, never reloaded."""
        clients = cls()
        clients._snapshot = Snapshot(served=_frozen(endpoints.items()))
        return clients

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def due(self) -> bool:
        """Whether a request the snapshot cannot serve should check the files first."""
        return bool(self._sources) and time.monotonic() - self._checked >= self._recheck

    def files(self) -> list[str]:
        """The mapping files the sources name now (a named file is kept even when missing)."""
        found: list[str] = []
        for source in self._sources:
            if glob.has_magic(source):
                found += sorted(glob.glob(source))
            elif os.path.isdir(source):
                found += sorted(str(p) for p in Path(source).glob("*.yaml"))
            else:
                found.append(source)
        return list(dict.fromkeys(found))

    def reload(self) -> Snapshot:
        """Load every file again (``SIGHUP``)."""
        return self._rebuild(everything=True)

    def refresh(self) -> Snapshot:
        """Load new, changed and failed files again, at most once per ``recheck`` seconds."""
        if not self.due():
            return self._snapshot
        return self._rebuild(everything=False)

    def _rebuild(self, *, everything: bool) -> Snapshot:
        if not self._sources:
            return self._snapshot
        with self._lock:
            if not everything and not self.due():  # another request checked meanwhile
                return self._snapshot
            self._checked = time.monotonic()
            current = self._snapshot
            paths = self.files()
            changed = everything or set(paths) != set(current.files)
            loaded: list[Loaded] = []
            for path in paths:
                old = current.files.get(path)
                if old and not everything and old.endpoint and old.stamp == _stamp(path):
                    loaded.append(old)
                else:
                    loaded.append(load(path, old))
                    changed = changed or loaded[-1] != old
            if changed:
                self._snapshot = _built(loaded, current)
                _report(current, self._snapshot)
            return self._snapshot


def _built(loaded: list[Loaded], previous: Snapshot) -> Snapshot:
    # A client stays with the file that served it: a copy not yet renamed cannot take it over.
    loaded = sorted(loaded, key=lambda f: (previous.owners.get(f.client) != f.path, f.path))
    served: dict[str, ClientEndpoint] = {}
    not_served: dict[str, str] = {}
    owners: dict[str, str] = {}
    ignored: list[str] = []
    for f in loaded:
        if f.client in owners:
            ignored.append(f"{f.path}: client {f.client} is already given by {owners[f.client]}")
            continue
        owners[f.client] = f.path
        if f.endpoint is not None:
            served[f.client] = f.endpoint
        else:
            not_served[f.client] = f.reason or "not loaded"
    return Snapshot(
        served=_frozen(served.items()),
        not_served=_frozen(not_served.items()),
        ignored=tuple(sorted(ignored)),
        files=_frozen((f.path, f) for f in loaded),
        owners=_frozen(owners.items()),
    )


def _report(before: Snapshot, after: Snapshot) -> None:
    """One log line per change of who is served; reasons name references, never values."""
    for client in sorted(set(after.served) - set(before.served)):
        log.warning("serving client %s", client)
    for client, reason in sorted(after.not_served.items()):
        if before.not_served.get(client) != reason:
            log.warning("client %s is not served: %s", client, reason)
    for client in sorted(set(before.served) | set(before.not_served)):
        if client not in after.served and client not in after.not_served:
            log.warning("client %s is no longer configured", client)
    for line in after.ignored:
        if line not in before.ignored:
            log.warning("ignored: %s", line)
