"""SQL models of the web service, split by domain; submissions are the workers' table.

Every model shares `workers.models.Base`, so one metadata (and one Alembic history)
covers the whole schema and the submissions table exists exactly once.
"""

from web.models.assignments import AssignmentSettings, Extension
from web.models.grades import GradeRecord, TestOutcome
from web.models.idempotency import IdempotencyKey
from web.models.jobs import BackgroundJob
from web.models.overrides import ScoreOverride
from web.models.sessions import UserSession
from web.models.tokens import ApiToken
from web.models.users import INSTRUCTOR, ROLES, STUDENT, User
from workers.models import Base, Submission

__all__ = ["ApiToken", "AssignmentSettings", "BackgroundJob", "Base", "Extension", "GradeRecord",
           "INSTRUCTOR", "IdempotencyKey", "ROLES", "STUDENT", "ScoreOverride", "Submission", "TestOutcome",
           "User", "UserSession"]
