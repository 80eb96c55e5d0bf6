"""Write the tabular demo's CSV files: scikit-learn's breast cancer data (569 tumours, 30
measurements, benign or malignant) as a user would bring it, with most labels blanked.

    python scripts/make_tabular_demo.py --out outputs/demo
    ssvae-train -m experiment=tabular_demo

train.csv: 455 rows, of which --labeled keep their diagnosis (stratified, seeded) and the rest
have an empty label cell. test.csv: the other 114 rows, all labeled (a held-out test table).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from ssvae.io import write_text_atomic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"))
    parser.add_argument("--labeled", type=int, default=100, help="rows of train.csv with a label")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns={"target": "diagnosis"})
    frame["diagnosis"] = np.asarray(data.target_names)[frame["diagnosis"]]
    train, test = train_test_split(
        frame, test_size=0.2, stratify=frame["diagnosis"], random_state=args.seed
    )
    kept, _ = train_test_split(
        train.index, train_size=args.labeled, stratify=train["diagnosis"], random_state=args.seed
    )
    train = train.copy()
    train.loc[~train.index.isin(kept), "diagnosis"] = None
    write_text_atomic(args.out / "train.csv", train.to_csv(index=False))
    write_text_atomic(args.out / "test.csv", test.to_csv(index=False))
    print(f"{args.out}/train.csv: {len(train)} rows, {args.labeled} labeled")
    print(f"{args.out}/test.csv: {len(test)} rows, all labeled")


if __name__ == "__main__":
    main()
