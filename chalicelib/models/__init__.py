"""PynamoDB models, one module per aggregate. docs/data-model.md lists every table and index."""

from .collaborators import Collaborator
from .files import FileVersion, ProjectFile
from .projects import Project, ProjectName
from .tokens import AuthToken
from .uploads import UploadSession
from .users import LoginFailure, User

ALL_MODELS = (User, LoginFailure, AuthToken, Project, ProjectName, Collaborator, ProjectFile,
              UploadSession)

__all__ = [
    "ALL_MODELS", "AuthToken", "Collaborator", "FileVersion", "LoginFailure", "Project",
    "ProjectFile", "ProjectName", "UploadSession", "User",
]
