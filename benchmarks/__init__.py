"""On-demand benchmarks of stokline (`make bench`): each measures its own baseline in the same run.

Run one with ``python -m benchmarks.bench_<name> [--quick]`` from the project root, or all of them
with ``python -m benchmarks.run_all``. See benchmarks/README.md for what each figure means.
"""
