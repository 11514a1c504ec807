"""``python -m harness.tune WORKER``: one worker process of a ``--workers K`` study (see workers.py)."""

import sys

from .workers import worker_main

sys.exit(worker_main(sys.argv[1:]))
