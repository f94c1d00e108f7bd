"""Benchmarks: speed, memory and quality from 1k to 1M chunks, beside a LangChain peer (`python -m benchmarks`)."""
