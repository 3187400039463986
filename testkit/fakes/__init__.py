"""Test doubles for shopbot's end-to-end tests."""
