"""Retrain from cron: the same as `heeldrop retrain`, with its exit codes.

    scripts/retrain.py --data outcomes.csv [--data more.csv] [--promote auto|never|force]

Exit 0 promoted, 3 registered but held back by a gate, 2 bad input.
"""

import sys

from service.cli import main

if __name__ == "__main__":
    sys.exit(main(["retrain", *sys.argv[1:]]))
