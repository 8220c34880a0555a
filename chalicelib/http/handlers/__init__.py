"""One Chalice blueprint per resource. Handlers parse, call a service, shape the response."""
