"""The quickstart's objective: an SVC pipeline on the wine data, scored by 3-fold CV (scaling fit inside folds)."""

from sklearn.datasets import load_wine
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import SVC

X, y = load_wine(return_X_y=True)
SCALERS = {"standard": StandardScaler, "minmax": MinMaxScaler}


def objective(config, trial):
    svc = SVC(C=config["C"], kernel=config["kernel"], gamma=config.get("gamma", "scale"),
              degree=config.get("degree", 3), random_state=trial.seed, max_iter=100_000)
    steps = [SCALERS[config["scale"]]()] if config["scale"] in SCALERS else []
    model = make_pipeline(*steps, svc)
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    scores = cross_val_score(model, X, y, cv=folds, scoring="accuracy")
    return {"accuracy": float(scores.mean()), "accuracy_std": float(scores.std())}
