"""stokline: Stokly ↔ SHOPLINE integration, declared in mapping files and run by Prefect."""

__version__ = "0.1.0"
