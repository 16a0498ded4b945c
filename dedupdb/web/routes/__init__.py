"""The UI's areas: one module each, with ROUTES and NAV (see app.py)."""
