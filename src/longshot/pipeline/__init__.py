"""The stages of a run, one module per arrow of the design diagram."""
