"""Load the pack's content (rules, ADS documents, fixtures) into typed models that remember file and line."""
