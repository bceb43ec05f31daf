"""Independent jobs (slabs) on a pool of threads: the codec's kernels release the GIL, so the
jobs of one call run in parallel; used by the codec and by the DICOM layer."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor


def run_each(task, jobs, threads: int) -> list:
    """``task(job)`` for every job, results in job order, on up to ``threads`` threads. Every job is
    independent, so the results (and the bytes written from them) do not depend on ``threads``."""
    jobs = list(jobs)
    if threads <= 1 or len(jobs) <= 1:
        return [task(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=min(threads, len(jobs))) as pool:
        return list(pool.map(task, jobs))
