"""PynamoDB models, one module per aggregate. docs/data-model.md lists every table and index.

Beside them, what the tables store that is not a table: `roles` (the words of project roles) and
`shapes` (the files list's rendering of a file's versions, pydantic only). Models hold data: they
import the foundation and each other, nothing above.
"""

from chalicelib.models.collaborators import Collaborator
from chalicelib.models.counts import ListCount
from chalicelib.models.deltas import ClientFeaturePk, Delta
from chalicelib.models.files import FileVersion, ProjectFile
from chalicelib.models.jobs import Job, JobLease
from chalicelib.models.organizations import Membership, Team
from chalicelib.models.projects import Project, ProjectName
from chalicelib.models.tokens import AuthToken
from chalicelib.models.uploads import UploadSession
from chalicelib.models.users import LoginAttempts, User

ALL_MODELS = (User, LoginAttempts, AuthToken, Project, ProjectName, Collaborator, ProjectFile,
              UploadSession, Job, JobLease, Delta, ClientFeaturePk, Membership, Team, ListCount)

__all__ = [
    "ALL_MODELS", "AuthToken", "ClientFeaturePk", "Collaborator", "Delta", "FileVersion", "Job",
    "JobLease", "ListCount", "LoginAttempts", "Membership", "Project", "ProjectFile", "ProjectName",
    "Team", "UploadSession", "User",
]
