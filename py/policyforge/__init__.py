"""policyforge: generate -> check -> evaluate -> select for native systems heuristics."""
__version__ = "0.1.0"
