"""`python -m trainer`: see trainer/train.py for the launch commands."""

from __future__ import annotations

import sys

from trainer.train import main

if __name__ == "__main__":
    sys.exit(main())
