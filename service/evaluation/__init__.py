"""Evaluation: run the rule library over records with either engine and describe the findings."""
