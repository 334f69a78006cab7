"""fireline: the shared root of the three packages (version and error hierarchy).

``agents``, ``detectors`` and ``playbooks`` may all import this package; it imports
none of them, so the one-way import rule of the design still holds.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
