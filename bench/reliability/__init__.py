"""Issue 6's reliability suite (`just reliability`, results in docs/reliability.md): the API
fuzzed from its own OpenAPI document, random operation sequences against a model, faults
under load, a full disk and 1,000 connections. Run: `.venv/bin/python bench/reliability/run.py`.
"""
