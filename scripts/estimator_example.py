"""The notebook-style example in docs/estimator.md: python scripts/estimator_example.py"""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from ssvae import SemiSupervisedClassifier

X, y = load_digits(return_X_y=True)
X = X / 16.0  # pixels in [0, 1]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
rng = np.random.default_rng(0)
y_partial = y_train.copy()
y_partial[rng.permutation(len(y_partial))[100:]] = -1  # keep 100 labels, blank the rest
print("labeled:", (y_partial != -1).sum(), "unlabeled:", (y_partial == -1).sum())

for name in ("supervised", "ladder"):
    clf = SemiSupervisedClassifier(model=name, max_epochs=50, num_threads=1)
    clf.fit(X_train, y_partial)
    print(f"{name:10s} test accuracy {clf.score(X_test, y_test):.4f}")
print("classes_:", clf.classes_)
print("predict_proba row 0:", np.round(clf.predict_proba(X_test[:1]), 3))
