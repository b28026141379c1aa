"""A sitecustomize for child processes: refuses and records every non-loopback connection
and name lookup, and records a hub or orchestration library imported before its offline
switches were set. The record goes to the file named by $EPISTANCE_NET_LOG (one line per
event); an empty or missing file means: no attempt, switches always set in time.

`install(folder)` writes it as `folder/sitecustomize.py`; put `folder` first on PYTHONPATH.
"""
from __future__ import annotations

from pathlib import Path

GUARD = r'''
import importlib.abc, ipaddress, os, socket, sys

_LOG = os.environ.get("EPISTANCE_NET_LOG")


def _record(line):
    if _LOG:
        with open(_LOG, "a") as handle:
            handle.write(f"{os.getpid()} {line}\n")


def _local(host):
    if host in ("localhost", "", None) or (isinstance(host, str) and host.endswith(".localhost")):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse(what):
    _record(f"connect {what}")
    raise ConnectionRefusedError(f"non-loopback connection refused by the test: {what}")


_connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
_gethostbyname = socket.gethostbyname


def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
        _refuse(address[0])
    return _connect(self, address)


def connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
        _refuse(address[0])
    return _connect_ex(self, address)


def getaddrinfo(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if not _local(name):
        _refuse(f"lookup {name}")
    return _getaddrinfo(host, *args, **kwargs)


def gethostbyname(host):
    if not _local(host):
        _refuse(f"lookup {host}")
    return _gethostbyname(host)


socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
socket.getaddrinfo, socket.gethostbyname = getaddrinfo, gethostbyname

# Offline switches each library must see when it is first imported (RELIABILITY 28).
_REQUIRED = {
    "huggingface_hub": ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"),
    "transformers": ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"),
    "datasets": ("HF_DATASETS_OFFLINE",),
    "prefect": ("DO_NOT_TRACK", "PREFECT_SERVER_ANALYTICS_ENABLED"),
}
_seen = set()


class _Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in _REQUIRED and name not in _seen:
            _seen.add(name)
            missing = [v for v in _REQUIRED[name] if not os.environ.get(v)]
            if missing:
                _record(f"import {name} before {','.join(missing)}")
            else:
                _record_ok(name)
        return None


def _record_ok(name):
    log = os.environ.get("EPISTANCE_IMPORT_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(f"{name}\n")


sys.meta_path.insert(0, _Watch())
'''


def install(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(GUARD)
    return folder
