"""Benchmark decontamination: GPT-3's 13-gram overlap removal (Appendix C).
"""
