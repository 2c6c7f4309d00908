"""Evaluate a merc_hf checkpoint (local directory or Hub id) on the dataset it was trained on, or another.

A thin caller of :mod:`merc_hf.cli.evaluate` (the ``merc-evaluate`` console script), for a clone:

    python examples/evaluate.py --model outputs/m3net-cmerc-synthetic/model
"""

from merc_hf.cli.evaluate import main

if __name__ == "__main__":
    main()
