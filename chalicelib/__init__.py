"""The QFieldCloud-compatible API: services, models and handlers behind the Chalice app."""
