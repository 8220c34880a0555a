"""PynamoDB models, one module per aggregate. docs/data-model.md lists every table and index."""

from .collaborators import Collaborator
from .counts import ListCount
from .deltas import ClientFeaturePk, Delta
from .files import FileVersion, ProjectFile
from .jobs import Job, JobLease
from .organizations import Membership, Team
from .projects import Project, ProjectName
from .tokens import AuthToken
from .uploads import UploadSession
from .users import LoginAttempts, User

ALL_MODELS = (User, LoginAttempts, AuthToken, Project, ProjectName, Collaborator, ProjectFile,
              UploadSession, Job, JobLease, Delta, ClientFeaturePk, Membership, Team, ListCount)

__all__ = [
    "ALL_MODELS", "AuthToken", "ClientFeaturePk", "Collaborator", "Delta", "FileVersion", "Job",
    "JobLease", "ListCount", "LoginAttempts", "Membership", "Project", "ProjectFile", "ProjectName",
    "Team", "UploadSession", "User",
]
