"""Entry point of the training child (see tuitune.runner.train)."""

import sys

from tuitune.runner.train import main

if __name__ == "__main__":
    sys.exit(main())
