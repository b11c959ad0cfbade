"""Node 1's training pipeline library: ingest, validate, decide, split, clean, train, promote, explain.

Never imports Airflow.
"""
