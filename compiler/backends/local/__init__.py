"""The local backend: the generated function's code on this machine, with the spec's limits enforced.

:mod:`.prepare` decides what to run (mounts, cores, env, retries); :mod:`.supervise` runs its attempts (the
memory limit through :mod:`.limits`: a cgroup, else the PSS watch of :mod:`.pss`; the timeout; signals);
:mod:`.volumes` keeps read-only volumes read-only; :mod:`.sweep` runs every trial of a sweep; :mod:`.child`
is the process that calls the target; :mod:`.processes` holds the psutil helpers they share.
"""
