"""Licence terms, offers, agreements and their evaluation."""
