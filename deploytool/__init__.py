"""`python deploy.py`: one command to preview or deploy a stack from a laptop or CI."""
