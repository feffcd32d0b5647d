"""`python -m bench`: the runner against psql and dbmate on one embedded PostgreSQL."""
