"""A fuzzing campaign for pcapan: mutated real captures through every analysis path.

``python -m tests.fuzz --inputs N --seed S --workers 2 --out DIR`` (see ``--help``); the CI test
tests/test_fuzz_campaign.py runs a small campaign. Modules: capture (seed reader, pcap/pcapng
writers), mutate (the mutations), check (the paths and what counts as a failure), runner (worker
processes, limits, reproducers, summary).
"""
