"""Where per-video jobs run: in this process, in a local process pool, or on a Ray cluster.

Every executor takes the same pure job function and yields results as they complete, so the build loop that
stages results (and makes the build resumable) is the same whatever runs the jobs.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Callable, Iterator, Sequence, TypeVar

from dvtr_bench.errors import ConfigError

S = TypeVar("S")
R = TypeVar("R")

EXECUTORS = ("process", "ray")


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def run_local(fn: Callable[[S], R], specs: Sequence[S], workers: int) -> Iterator[R]:
    """Run jobs in a process pool (or inline with ``workers <= 1``), yielding results in completion order."""
    if workers <= 1 or len(specs) <= 1:
        for s in specs:
            yield fn(s)
        return
    # fork is cheap and the parent holds no decoder state when jobs start; elsewhere use the platform default.
    ctx = mp.get_context("fork") if sys.platform.startswith("linux") else mp.get_context()
    with ProcessPoolExecutor(max_workers=min(workers, len(specs)), mp_context=ctx) as pool:
        pending = {pool.submit(fn, s) for s in specs}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                yield f.result()


def run_ray(fn: Callable[[S], R], specs: Sequence[S], address: str | None = None,
            num_cpus: int | None = None) -> Iterator[R]:
    """Run jobs as Ray tasks on an existing cluster (``address``) or a local one started here."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'dvtr-bench[ray]'") from None
    started = False
    if not ray.is_initialized():
        import logging

        # The library never prints: keep Ray's start-up chatter and worker logs off the console.
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        started = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=1)(fn)
        pending = [remote.remote(s) for s in specs]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                yield ray.get(ref)
    finally:
        if started:
            ray.shutdown()


def run_jobs(fn: Callable[[S], R], specs: Sequence[S], executor: str = "process", workers: int | None = None,
             ray_address: str | None = None) -> Iterator[R]:
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    workers = default_workers() if workers is None else workers
    if executor == "ray":
        return run_ray(fn, specs, address=ray_address, num_cpus=None if ray_address else max(1, workers))
    return run_local(fn, specs, workers)
