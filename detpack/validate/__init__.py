"""Validation: schema checks, pySigma's parser and validators, and the pack's own cross-checks."""
