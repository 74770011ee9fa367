"""detpack: a detection-as-code pack for container command-and-control and monitoring bypass.

The flow, one module per step: content (load) -> validate -> convert -> replay (execute on
fixtures) -> publish (package into dist/).
"""

__version__ = "0.1.0"
