"""The Dask client of a sweep or a Monte-Carlo run: a LocalCluster sized to the machine, or a running
scheduler's address."""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager

__all__ = ["ClusterError", "connect", "local_cores", "CONNECT_TIMEOUT_S"]

# seconds to reach a scheduler given by address (and, with workers=N, for N workers to join it)
CONNECT_TIMEOUT_S = 30
INSTALL_HINT = "pip install 'resnet_sim[cluster]' (dask and distributed)"


class ClusterError(ValueError):
    """Dask is missing, or the scheduler cannot be reached (one line: what failed and how to fix it)."""


def local_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@contextmanager
def connect(scheduler: str | None = None, workers: int | None = None, timeout: float = CONNECT_TIMEOUT_S):
    """Yield a ``distributed.Client``: on ``scheduler`` (an address such as ``tcp://host:8786``), waiting for
    ``workers`` workers to join when given; without an address on a new LocalCluster of ``workers`` worker
    processes (default: one per core) of one thread each, closed on exit. ClusterError when Dask is not
    installed or the scheduler cannot be reached within ``timeout`` seconds."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ClusterError(f"needs Dask: {INSTALL_HINT}") from None
    if workers is not None and workers < 1:
        raise ClusterError(f"--workers must be >= 1, got {workers}")
    cluster = None
    if scheduler is None:
        # one thread per worker process: a run's Numba kernels use the threads the run asks for, and two runs
        # in one process would share Numba's thread pool
        cluster = LocalCluster(n_workers=workers or local_cores(), threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.ERROR)
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, ValueError, TypeError) as err:
            raise ClusterError(f"cannot reach the Dask scheduler at {scheduler!r}: {str(err).splitlines()[0]}") \
                from None
    try:
        if scheduler is not None and workers is not None:
            try:
                client.wait_for_workers(workers, timeout=timeout)
            except TimeoutError:
                have = len(client.scheduler_info(n_workers=-1)["workers"])
                raise ClusterError(f"{scheduler}: {have} of the {workers} workers asked for (--workers) joined "
                                   f"within {timeout:g} s") from None
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
