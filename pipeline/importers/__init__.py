"""Importers: metric definitions of other tools written as our metric files."""
