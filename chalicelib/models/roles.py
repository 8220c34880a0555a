"""The vocabulary of roles on a project: the roles (reader < reporter < editor < manager < admin)
and the origins a role comes from. Words only: which role each action needs, and how a user's
role is resolved, are `permissions`' business. Here, beside the models, because the inputs read
roles by their labels and the outputs show origins: neither depends on the permission rules."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Role(IntEnum):
    READER = 1
    REPORTER = 2
    EDITOR = 3
    MANAGER = 4
    ADMIN = 5

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, value: object) -> Role:
        """`reader`, `Editor`, ... (case and spaces ignored); ValueError otherwise."""
        if isinstance(value, str) and value.strip().upper() in cls.__members__:
            return cls[value.strip().upper()]
        raise ValueError(f"must be one of: {', '.join(role.label for role in cls)}")


class Origin(StrEnum):
    PROJECT_OWNER = "project_owner"
    ORGANIZATION_OWNER = "organization_owner"
    ORGANIZATION_ADMIN = "organization_admin"
    COLLABORATOR = "collaborator"
    TEAM_MEMBER = "team_member"
    ORGANIZATION_MEMBER = "organization_member"
    PUBLIC = "public"
