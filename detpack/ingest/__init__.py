"""Ingest models: a fixture event in its data source's native format -> the view a query runs on.

`reference` is the Sigma view (the field names rules are written in); the SIEM views (Splunk's JSON
extraction, the Elastic integration's ECS documents) are separate models, written from each vendor's
documentation.
"""
