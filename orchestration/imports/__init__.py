"""Dagster wiring of the customer/sale import (assets, checks, schedules, sensor)."""
