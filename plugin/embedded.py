"""The plugin's one door into local_sagemaker: a local SageMaker started for whoever needs one and named none.

With the local backend and no endpoint named (config's `local.endpoint_url`, `$SAGEMAKER_PLUGIN_ENDPOINT_URL`), every
entry point still just works: `sagemaker-plugin run` starts one for the command's duration (`sagemaker_endpoint`); the
Python API and a local Flyte workflow start one per process on first use, stopped when the process exits
(`process_endpoint`). Its clients in this process sign with its key pair without being told
(handlers/local_credentials.py). local_sagemaker (moto) is imported here only, and only when a server is needed.
Every one of them keeps its S3, jobs, logs and metrics in the data folder (`data_dir`), so that the next one answers
for them; `reset` clears that folder.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from handlers.errors import InputError, Problem
from handlers.local import LocalSettings
from plugin.config import Config
from plugin.jobs.resource import Embedded

if TYPE_CHECKING:
    from local_sagemaker import LocalSageMaker

_lock = threading.Lock()
_process_server: LocalSageMaker | None = None  # the process's own, once started (one per process, as moto's state is)


def local_settings(config: Config) -> LocalSettings:
    """The local SageMaker's settings from config's `local` section (a LocalSettings with where to find it): the
    settings alone, so that nothing of plugin/ travels into local_sagemaker."""
    return LocalSettings(**{f.name: getattr(config.local, f.name) for f in fields(LocalSettings)})


def data_dir(config: Config) -> Path:
    """Where the local SageMaker keeps its S3, jobs, logs and metrics (config `local.data_dir`, else the default)."""
    from local_sagemaker.persistence import default_data_dir

    return Path(config.local.data_dir).expanduser() if config.local.data_dir else default_data_dir()


def kept_path(config: Config, bucket: str, key: str) -> Path:
    """The file on disk that keeps the local S3 object `s3://bucket/key`."""
    from local_sagemaker.persistence import S3Mirror

    return S3Mirror(data_dir(config)).path_of(bucket, key)


def with_endpoint(config: Config, url: str, embedded: bool = False) -> Config:
    """`config` reaching the local SageMaker at `url` (`embedded`: one this process started for itself)."""
    return replace(config, local=replace(config.local, endpoint_url=url, embedded=embedded))


def own_server(config: Config) -> Embedded | None:
    """How later commands find the jobs of the local SageMaker `config` reaches, when it lives in this process
    (`run`'s, or the process's own when no endpoint is named) and so dies with it; None when it is served (or AWS)."""
    if config.backend != "local" or (config.endpoint_url() and not config.local.embedded):
        return None
    source = Path(config.source)
    return Embedded(str(source.resolve()) if source.is_file() else None)


@contextlib.contextmanager
def sagemaker_endpoint(config: Config) -> Iterator[Config]:
    """The config, with a local SageMaker of its own for the block when the local backend names none."""
    if config.backend != "local" or config.endpoint_url():
        yield config
        return
    with _started(config) as server:
        yield with_endpoint(config, server.url, embedded=True)


@contextlib.contextmanager
def _started(config: Config) -> Iterator[LocalSageMaker]:
    """A local SageMaker on config's settings and data folder; a folder it cannot use is bad input, said as such."""
    from local_sagemaker import LocalSageMaker

    server = LocalSageMaker(local_settings(config), data_dir=data_dir(config))
    _start(server)
    try:
        yield server
    finally:
        server.stop()


def _start(server: LocalSageMaker) -> None:
    from local_sagemaker.store import FolderInUse, StoreError

    try:
        server.start()
    except (StoreError, FolderInUse) as error:
        raise InputError(Problem("local.data_dir", str(error))) from None


def process_endpoint(config: Config, *, start: bool = True) -> str | None:
    """The URL of this process's own local SageMaker, started on first use from `config`'s local settings (later
    configs share it as it is); stopped, with its jobs, when the process exits. None if none runs and not `start`."""
    global _process_server
    with _lock:
        if _process_server is None and start:
            from local_sagemaker import LocalSageMaker

            # reset=False: moto's state is per process; a server someone else started here keeps its jobs.
            server = LocalSageMaker(local_settings(config), reset=False, data_dir=data_dir(config))
            _start(server)
            atexit.register(server.stop)
            _process_server = server
        return _process_server.url if _process_server is not None else None


def serve(config: Config, port: int, host: str, *, allow_remote: bool, ready: Any) -> None:
    """`sagemaker-plugin local serve`: local_sagemaker.serve with config's local settings."""
    from local_sagemaker import serve as serve_local
    from local_sagemaker.store import FolderInUse, StoreError

    try:
        serve_local(local_settings(config), port=port, host=host, ready=ready, allow_remote=allow_remote,
                    data_dir=data_dir(config))
    except (StoreError, FolderInUse) as error:
        raise InputError(Problem("local.data_dir", str(error))) from None


def kept_entries(config: Config) -> list[Path]:
    """What the data folder keeps (the local S3, the records, their locks) that exists now."""
    from local_sagemaker.store import kept_entries as entries

    return entries(data_dir(config))


def reset(config: Config, check_only: bool = False) -> list[Path]:
    """Deletes what the data folder keeps (`check_only`: nothing, only the check); InputError while a local SageMaker
    uses it."""
    from local_sagemaker.store import FolderInUse, check_unused, clear

    try:
        if check_only:
            check_unused(data_dir(config))
            return []
        return clear(data_dir(config))
    except FolderInUse as error:
        raise InputError(Problem("local.data_dir", f"{error}: stop it first (it keeps writing there)")) from None


def export_lines(server: Any) -> list[str]:
    from local_sagemaker import export_lines as lines

    return lines(server)


def remote_warning(host: str) -> str:
    from local_sagemaker import REMOTE_WARNING

    return REMOTE_WARNING.format(host=host)


def loopback(host: str) -> bool:
    from local_sagemaker.access import loopback_host

    return loopback_host(host)


def no_local_sagemaker() -> InputError:
    """The local backend without a local SageMaker to talk to: how to start one."""
    return InputError(Problem("local.endpoint_url", "the local backend needs a running local SageMaker: start one "
                              "with `sagemaker-plugin local serve` and run the `export ...` lines it prints "
                              "($SAGEMAKER_PLUGIN_ENDPOINT_URL and its key pair) in this shell, or set "
                              "local.endpoint_url"))
