"""Make pySigma fully offline: packaged ATT&CK / D3FEND data, a private cache, and a network guard.

pySigma 1.x loads MITRE ATT&CK (``sigma.data.mitre_attack``) and D3FEND (``sigma.data.mitre_d3fend``) lazily,
on the first attribute access, by downloading them from GitHub / d3fend.mitre.org and caching the parsed
result with diskcache under ``~/.cache/pysigma``. ``configure_offline()`` points both loaders at the files
shipped in ``detpack/data`` and at a cache directory that is never the user's home, so every process parses
the pinned snapshot afresh and a stale cache from an earlier snapshot is never used.

``block_network()`` is a belt-and-braces guard for builds and tests: any attempt to open a connection or
resolve a name inside it fails with ``OSError``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import NoReturn

from detpack.attack import ATTACK_SNAPSHOT_FILE

D3FEND_STUB_FILE = "d3fend-empty.json"
NETWORK_DISABLED_MESSAGE = "detpack: network access is disabled (offline build)"


@dataclass(frozen=True)
class _Configured:
    pid: int
    attack_file: str
    d3fend_file: str
    cache_dir: Path


_lock = threading.Lock()
_configured: _Configured | None = None
_default_cache_dir: tuple[int, Path] | None = None  # (pid, dir) of the lazily created per-process temp dir
_resource_files = contextlib.ExitStack()  # keeps extracted data files alive if detpack is imported from a zip
atexit.register(_resource_files.close)


def _data_file(*parts: str) -> str:
    """Filesystem path of a packaged data file (pySigma opens it with ``open()``)."""
    resource = resources.files("detpack").joinpath("data", *parts)
    if isinstance(resource, Path):
        path = resource
    else:  # e.g. a zipped install: extract for the lifetime of the process
        path = _resource_files.enter_context(resources.as_file(resource))
    if not path.is_file():
        raise FileNotFoundError(f"detpack: packaged data file {'/'.join(parts)} is missing ({path})")
    return str(path)


def _remove_dir(pid: int, path: Path) -> None:
    if os.getpid() == pid:  # a forked child must not delete its parent's cache
        shutil.rmtree(path, ignore_errors=True)


def _per_process_cache_dir() -> Path:
    """A fresh temporary directory, created once per process (a forked child gets its own)."""
    global _default_cache_dir
    pid = os.getpid()
    if _default_cache_dir is None or _default_cache_dir[0] != pid:
        path = Path(tempfile.mkdtemp(prefix="detpack-pysigma-cache-"))
        atexit.register(_remove_dir, pid, path)
        _default_cache_dir = (pid, path)
    return _default_cache_dir[1]


def _pysigma_points_at(module: object, url: str, cache_dir: Path) -> bool:
    # pySigma keeps the configuration in module globals; a lookup failure just means "reconfigure".
    custom_url = getattr(module, "_custom_url", None)
    custom_cache_dir = getattr(module, "_custom_cache_dir", None)
    return custom_url == url and custom_cache_dir == cache_dir


def configure_offline(cache_dir: Path | None = None) -> None:
    """Point pySigma's ATT&CK and D3FEND loaders at detpack's packaged data. Idempotent, thread-safe.

    ``cache_dir`` is the directory for pySigma's diskcache (one subdirectory per loader); by default a fresh
    temporary directory created on first use in this process and removed at exit. Whatever directory is
    used, its cached data is discarded, so the packaged snapshot is always what gets loaded.
    """
    global _configured
    from sigma.data import mitre_attack, mitre_d3fend

    with _lock:
        base = cache_dir if cache_dir is not None else _per_process_cache_dir()
        wanted = _Configured(
            pid=os.getpid(),
            attack_file=_data_file("attack", ATTACK_SNAPSHOT_FILE),
            d3fend_file=_data_file("d3fend", D3FEND_STUB_FILE),
            cache_dir=base,
        )
        if (
            _configured == wanted
            and _pysigma_points_at(mitre_attack, wanted.attack_file, base / "mitre_attack")
            and _pysigma_points_at(mitre_d3fend, wanted.d3fend_file, base / "mitre_d3fend")
        ):
            return
        # Order matters: set_url() clears the cache, which opens it, and before set_cache_dir() that would
        # create (and empty) ~/.cache/pysigma/... in the user's home.
        for module, url, subdir in (
            (mitre_attack, wanted.attack_file, "mitre_attack"),
            (mitre_d3fend, wanted.d3fend_file, "mitre_d3fend"),
        ):
            # Separate directories: each loader's clear_cache() empties its whole cache directory.
            module.set_cache_dir(str(base / subdir))
            module.set_url(url)
        _configured = wanted


def _refuse_network(*args: object, **kwargs: object) -> NoReturn:
    raise OSError(NETWORK_DISABLED_MESSAGE)


@contextlib.contextmanager
def _network_blocked() -> Iterator[None]:
    # connect/connect_ex are inherited from _socket.socket: remember whether socket.socket defined them
    # itself, so that leaving the block restores the class exactly (delete rather than shadow).
    own_methods = {name: socket.socket.__dict__.get(name) for name in ("connect", "connect_ex")}
    saved_create_connection = socket.create_connection
    saved_getaddrinfo = socket.getaddrinfo
    for name in own_methods:
        setattr(socket.socket, name, _refuse_network)
    socket.create_connection = _refuse_network
    socket.getaddrinfo = _refuse_network
    try:
        yield
    finally:
        for name, method in own_methods.items():
            if method is None:
                delattr(socket.socket, name)
            else:
                setattr(socket.socket, name, method)
        socket.create_connection = saved_create_connection
        socket.getaddrinfo = saved_getaddrinfo


def block_network() -> contextlib.AbstractContextManager[None]:
    """Context manager: inside it, ``socket.socket.connect``/``connect_ex``, ``socket.create_connection``
    and ``socket.getaddrinfo`` raise ``OSError(NETWORK_DISABLED_MESSAGE)``; the originals are restored on
    exit. Nests; not meant for concurrent use from several threads (it patches the ``socket`` module)."""
    return _network_blocked()
