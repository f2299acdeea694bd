"""Generated closed forms (see derivations/codegen.py); do not edit by hand."""
