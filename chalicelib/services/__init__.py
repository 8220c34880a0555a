"""The services: what the API and the job worker do, one module per concern (accounts, auth,
organizations, teams, users, projects and their lists, collaborators, files, uploads, jobs,
packages, deltas, thumbnails, a project's deletion, the health check).

A service takes typed values (`inputs`: what a request means once read; a `Caller`; models) and
returns models or small dataclasses. It never sees a request, a raw body or JSON; it applies the
rules (`chalicelib.rules`) and reads and writes through the models and the adapters.
"""
