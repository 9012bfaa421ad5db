"""Mutation testing (`make mutation`) in the live servers' processes.

mutmut runs the tests in its own process, with the mutant to test in MUTANT_UNDER_TEST, and learns
which tests run which functions by recording calls there. tests/conftest.py puts this folder on the
live servers' PYTHONPATH (tests/live_server.py) so that, in their processes too:
- a module run with `python -m` (the server launcher) answers to its own name, not `__main__`;
- while mutmut records (MUTANT_UNDER_TEST=stats), the functions run are appended to
  MUTATION_HITS_FILE, which conftest takes away after each test and credits to that test.
"""

import os
import sys

MAIN_MODULE = sys.orig_argv[sys.orig_argv.index("-m") + 1] if "-m" in sys.orig_argv else None
HITS_FILE = os.environ.get("MUTATION_HITS_FILE", "")
mutant = os.environ.get("MUTANT_UNDER_TEST", "")

if MAIN_MODULE and mutant.startswith(MAIN_MODULE + "."):
    # mutmut names a mutant after its module, which this process knows as __main__.
    os.environ["MUTANT_UNDER_TEST"] = "__main__." + mutant.removeprefix(MAIN_MODULE + ".")

if HITS_FILE and mutant == "stats":
    import mutmut.mutation.trampoline

    written: set[str] = set()

    def record_hit(name: str, caller: str | None = None) -> None:
        if MAIN_MODULE and name.startswith("__main__."):
            name = MAIN_MODULE + name.removeprefix("__main__")
        if not os.path.exists(HITS_FILE):
            written.clear()  # taken for the last test: this one's list starts empty
        if name not in written:  # once per test, not once per call
            written.add(name)
            with open(HITS_FILE, "a") as hits:
                hits.write(name + "\n")

    mutmut.mutation.trampoline.record_trampoline_hit = record_hit
