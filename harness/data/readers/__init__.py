"""Readers of raw datasets: one module or package per dataset family, and the strict file readers they share."""
