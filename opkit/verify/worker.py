"""Moved to opkit.runtimes.worker (one worker for every Python-API runtime); kept for older jobs."""

import sys

from opkit.runtimes.worker import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
