"""Training: the simulated cohort, labelled data, fitting and evaluating the classifier, the
clinical cases every new model must pass, its report, and retraining with promotion gates."""
