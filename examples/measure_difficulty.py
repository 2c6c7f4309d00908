"""CMERC's offline difficulty step from a clone: a thin caller of :mod:`merc_hf.cli.measure_difficulty`.

python examples/measure_difficulty.py --model outputs/m3net-meld/model --output difficulties.json
"""

from merc_hf.cli.measure_difficulty import main

if __name__ == "__main__":
    main()
