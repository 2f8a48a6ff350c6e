"""The Tuneboard trainer: runs inside the GPU pod, imports nothing of the web app.

Entry point: `python -m trainer` (see `trainer/train.py`).
"""
