"""Quality classifiers (GPT-3's logistic regression; a fastText variant), arriving with issue 5."""
