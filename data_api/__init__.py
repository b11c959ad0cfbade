"""Listing data API: a stand-in for the course's external data server."""
